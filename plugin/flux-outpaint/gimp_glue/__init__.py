"""GIMP-side glue of flux-outpaint, one concern per module; the decisions are the core's.

``procedure`` runs the outpaint procedure and maps every failure to one line; ``recover``
brings back a paid-for result; ``session`` holds what both need (key, time limit, worker);
``source`` picks the layer; ``pixels`` moves pixels between GIMP, PNG and JPEG; ``dialog``
holds the windows; ``worker`` runs the network job off the main thread; ``placement`` builds
the result layer.

Only the main thread ever calls Gimp, Gegl or Gtk: libgimp's wire to the core has no lock.

Start-up.  Every call of the plug-in is a new Python process, so what it imports is paid on
every call.  The network half (httpx and the queue client: a third of the import time, and
its TLS set-up, which reads the CA bundle) is not needed until the reference has been read:
``prefetch_network`` does both in a daemon thread while GIMP hands the run over and the layer
is read, and ``network`` waits for that thread before the main thread touches any of it.  The
thread starts only after the main thread's own imports are done, and the main thread imports
nothing more until it has waited, so the two never import at the same time.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

NETWORK_MODULES = ("flux_outpaint.pipeline", "flux_outpaint.variations")
_prefetch: threading.Thread | None = None
_made: dict[str, httpx.HTTPTransport] = {}


def _prepare_network() -> None:
    try:
        for name in NETWORK_MODULES:
            importlib.import_module(name)
        import httpx

        # what httpx.Client would make itself: verified TLS with certifi's CA bundle
        _made["transport"] = httpx.HTTPTransport()
    except Exception:  # noqa: BLE001 - the main thread does it again and reports
        return


def prefetch_network() -> None:
    """Import the network half and set up TLS in the background (once)."""
    global _prefetch
    if _prefetch is None:
        _prefetch = threading.Thread(target=_prepare_network, name="prefetch", daemon=True)
        _prefetch.start()


def network() -> None:
    """Wait for any background preparation: then the network half may be imported."""
    if _prefetch is not None:
        _prefetch.join()


def transport() -> httpx.HTTPTransport | None:
    """The prepared ``httpx`` transport (None: none made); handed out once, to one client."""
    network()
    return _made.pop("transport", None)
