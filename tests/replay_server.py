"""A loopback server that answers for finished requests only: what fal says of a request that
is COMPLETED (status, result JSON, image), from images given by request id.  Every submit or
cancel is counted and refused, so a test can assert that recovery never sends one.  It does
not model queueing, logs, storage uploads or errors other than "not found".
"""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


class Replay:
    """A finished request's answers, from the bytes the server of 8fda900's run kept."""

    def __init__(self, images: dict[str, bytes]) -> None:
        self.images, self.posts, self.gets = images, [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                outer.posts.append(self.path)
                self.send_response(500)
                self.end_headers()

            do_PUT = do_POST

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                outer.gets.append(path)
                parts = path.strip("/").split("/")
                rid = parts[-2] if parts[-1] == "status" else parts[-1]
                if parts[0] == "files" and rid in outer.images:
                    return self.reply(outer.images[rid], "image/png")
                if rid not in outer.images:
                    return self.reply(b'{"detail": "Request not found"}', status=404)
                if parts[-1] == "status":
                    return self.reply(json.dumps({"status": "COMPLETED"}).encode())
                image = Image.open(io.BytesIO(outer.images[rid]))
                url = f"{outer.base_url}/files/{rid}"
                body = {
                    "images": [
                        {
                            "url": url,
                            "width": image.width,
                            "height": image.height,
                            "content_type": "image/png",
                        }
                    ]
                }
                return self.reply(json.dumps(body).encode())

            def reply(self, body: bytes, kind: str = "application/json", status: int = 200):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
