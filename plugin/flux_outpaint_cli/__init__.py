"""The flux-outpaint command line: outpaint image files with FLUX.2 [pro] on fal.ai.

``main`` parses the command line and runs the jobs; ``compose`` puts the returned picture
and the exact original together; ``progress`` draws one line per job; ``imageio`` is the
Pillow side (encoding the reference).  Needs Pillow and numpy (the ``cli`` extra).
"""
