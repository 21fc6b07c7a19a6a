"""A local server that speaks fal's queue protocol for ``fal-ai/flux-2-pro/outpaint``.

For tests and for trying the product offline; the real endpoint stays the default everywhere.
``server`` listens (TLS, the shared state, ``start_server``, ``main``), ``routes`` is the HTTP
side (routes, auth, SSE, storage, pacing), ``backend`` the queue behind it (job lifecycle, file
store), ``scenarios`` the registry of fault scenarios, ``responses`` fal's error bodies,
``hostile`` what the hostile scenarios send and ``fill`` the stand-in for the model: a
deterministic, honestly non-generative fill.  Needs numpy and Pillow (the ``test`` extra).

    with start_server(scenarios=["429-once"]) as server:
        server.base_url, server.submits, server.log
"""

from .server import LocalServer, main, start_server

__all__ = ["LocalServer", "main", "start_server"]
