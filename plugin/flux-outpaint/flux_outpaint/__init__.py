"""flux-outpaint core: planning, request building and the fal queue client.

Pure Python (3.10+); the only third-party import is httpx, and only in the modules that
talk to the network.  See docs/architecture.md for the module map.
"""

__version__ = "0.1.0"
