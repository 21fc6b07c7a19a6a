"""Which fal the CLI talks to: the queue's URL and the key, the client, the local server.

``--local`` starts the local fal-compatible server in this process; it is imported only then
(``tests/test_layout.py``), so the installed tool never needs it.
"""

from __future__ import annotations

import os
from typing import Protocol

from flux_outpaint import settings
from flux_outpaint.errors import ConfigError
from flux_outpaint.queue_client import FalQueueClient

from .args import Options

LOCAL_KEY = "local-key"


class LocalFal(Protocol):
    """What the CLI uses of the local server (``flux_outpaint_fal_local.LocalServer``)."""

    base_url: str

    def stop(self) -> None: ...


def server_and_key(args: Options, server: LocalFal | None) -> tuple[str, str]:
    """The queue's base URL and the key (ConfigError with one line if either is missing)."""
    if server is not None:
        return server.base_url, LOCAL_KEY
    env = dict(os.environ)
    if args.base_url:
        env["FAL_QUEUE_URL"] = args.base_url
    return settings.queue_base_url(env), settings.load_api_key(env)


def make_client(args: Options, server: LocalFal | None) -> FalQueueClient:
    return FalQueueClient(*server_and_key(args, server))


def local_server() -> LocalFal:
    """The local fal-compatible server, in this process (``--local``: trying things offline)."""
    try:
        import flux_outpaint_fal_local  # only --local needs it
    except ImportError:
        raise ConfigError(
            "--local needs the local server package flux_outpaint_fal_local (a checkout of "
            "flux-outpaint with numpy and Pillow)"
        ) from None
    return flux_outpaint_fal_local.start_server()
