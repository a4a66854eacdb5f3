"""A real HTTP webhook receiver for the tests: a stdlib ThreadingHTTPServer on 127.0.0.1 in a thread.

It records every POST (path, headers, raw body), answers 200 unless told to fail the next N
requests (with a status), and can be taken down and brought back up on the same port.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int  # what the receiver answered

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.json()["events"])

    @property
    def admin_events(self) -> list[dict[str, Any]]:
        return list(self.json()["adminEvents"])


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._fail_left = 0
        self._fail_status = 500
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._fail_left, self._fail_status = n, status

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    status = 200
                    if receiver._fail_left > 0:
                        receiver._fail_left -= 1
                        status = receiver._fail_status
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take the receiver down (connections are refused until `start`)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # what arrived -----------------------------------------------------------------------------
    def ok(self, path: str | None = None) -> list[Received]:
        """Requests answered 2xx (delivered), optionally only those to `path`."""
        with self._lock:
            return [r for r in self.requests if r.status == 200 and (path is None or r.path == path)]

    def delivered_events(self, path: str | None = None) -> list[dict[str, Any]]:
        return [e for r in self.ok(path) for e in r.events]

    def delivered_admin(self, path: str | None = None, type_: str | None = None) -> list[dict[str, Any]]:
        return [e for r in self.ok(path) for e in r.admin_events if type_ is None or e["type"] == type_]


@contextmanager
def receiving(port: int | None = None) -> Iterator[Receiver]:
    receiver = Receiver(port).start()
    try:
        yield receiver
    finally:
        receiver.stop()
