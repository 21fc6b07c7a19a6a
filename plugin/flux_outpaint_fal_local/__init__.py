"""A local server that speaks fal's queue protocol for ``fal-ai/flux-2-pro/outpaint``.

For tests and for trying the product offline; the real endpoint stays the default everywhere.
``server`` is the HTTP side (routes, auth, SSE, storage, pacing), ``scenarios`` the queue behind
it (job lifecycle, file store, fault scenarios) and ``fill`` the stand-in for the model: a
deterministic, honestly non-generative fill.  Needs numpy and Pillow (the ``test`` extra).

    with start_server(scenarios=["429-once"]) as server:
        server.base_url, server.submits, server.log
"""

from .server import LocalServer, main, start_server

__all__ = ["LocalServer", "main", "start_server"]
