"""Run by the chroot's python3 (not GIMP), from test_sandbox.py: the vendored httpx works.

    python3 -I httpx_probe.py VENDOR_DIR BASE_URL

Fetches BASE_URL/sync with a Client and BASE_URL/async with an AsyncClient and prints JSON:
where httpx came from, its version, the Python version and both answers.
"""

from __future__ import annotations

import asyncio
import json
import sys


def main(vendor, base_url):
    sys.path.insert(0, vendor)
    import httpx

    with httpx.Client(timeout=10) as client:
        sync = client.get(base_url + "/sync").json()

    async def fetch():
        async with httpx.AsyncClient(timeout=10) as client:
            return (await client.get(base_url + "/async")).json()

    print(
        json.dumps(
            {
                "file": httpx.__file__,
                "version": httpx.__version__,
                "python": ".".join(map(str, sys.version_info[:2])),
                "sync": sync,
                "async": asyncio.run(fetch()),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
