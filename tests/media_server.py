"""A real HTTP server for media tests: python's http.server in a thread, serving a folder on 127.0.0.1.

``/etag/<path>`` serves ``<path>`` with ``ETag: "v1"`` and answers ``If-None-Match: "v1"`` with 304; other
paths are SimpleHTTPRequestHandler's own (``Last-Modified``, 304 to a current ``If-Modified-Since``). Every
request is recorded in ``seen`` (path and the two validators it carried)."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


class _Handler(http.server.SimpleHTTPRequestHandler):
    seen: list[dict]
    etag = False

    def log_message(self, *args):  # quiet
        pass

    def end_headers(self):
        if self.etag:
            self.send_header("ETag", '"v1"')
        super().end_headers()

    def send_head(self):
        self.seen.append({"path": self.path, "inm": self.headers.get("If-None-Match"),
                          "ims": self.headers.get("If-Modified-Since")})
        self.etag = self.path.startswith("/etag/")
        if self.etag:
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.end_headers()
                return None
            self.path = self.path[len("/etag"):]
        return super().send_head()


@dataclass
class FolderServer:
    url: str
    server: http.server.ThreadingHTTPServer
    seen: list[dict] = field(default_factory=list)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[FolderServer]:
    seen: list[dict] = []
    handler = type("Handler", (_Handler,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    running = FolderServer(f"http://127.0.0.1:{server.server_address[1]}", server, seen)
    try:
        yield running
    finally:
        running.stop()
