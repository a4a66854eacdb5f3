"""A small HTTP server on 127.0.0.1 answering JSON by path, for tests of what the gateway fetches or calls
(an authorization server's metadata and keys, clients' metadata documents, an x402 facilitator). GET paths
map to documents, or to functions that build them at each request; POST paths to functions of the JSON
body; anything else is a 404. Optionally over TLS."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Document = Any | Callable[[], Any]


class JsonServer:
    def __init__(
        self,
        documents: dict[str, Document] | None = None,
        tls: ssl.SSLContext | None = None,
        posts: dict[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.documents: dict[str, Document] = dict(documents or {})
        self.posts: dict[str, Callable[[Any], Any]] = dict(posts or {})
        self.requests: list[str] = []  # the paths asked for, in order
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if self.path not in server.documents:
                    self.send_error(404)
                    return
                found = server.documents[self.path]
                self._json(found() if callable(found) else found)

            def do_POST(self) -> None:
                server.requests.append(self.path)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                if self.path not in server.posts:
                    self.send_error(404)
                    return
                self._json(server.posts[self.path](body))

            def _json(self, answer: Any) -> None:
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
