"""A loopback HTTP server that records every request it gets: bait for anything that should never go online."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    """What reached the server: ``requests`` as (method, path), the Authorization headers sent, and each request's
    headers and body in arrival order."""

    base: str
    requests: list[tuple[str, str]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


@contextmanager
def recording_server(status: int = 404, body: bytes = b"") -> Iterator[Recorded]:
    """Serves on 127.0.0.1 (a free port) until the block ends; answers every request with ``status`` and ``body``."""
    recorded = Recorded(base="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            recorded.requests.append((self.command, self.path))
            recorded.headers.append(dict(self.headers.items()))
            recorded.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if self.headers.get("Authorization"):
                recorded.authorizations.append(self.headers["Authorization"])
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorded.base = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorded
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
