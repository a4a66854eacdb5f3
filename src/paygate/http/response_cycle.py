"""uvicorn's request/response cycle, writing each complete response with one `transport.write`.

uvicorn's `RequestResponseCycle.send` (httptools_impl.py, 0.55) writes the status line and headers
on `http.response.start` and the body on `http.response.body`: two writes, so two `send()` syscalls
and two TCP segments for every JSON answer. And it checks every header with two regular expressions.
`ResponseCycle` changes only that:

**The head is held until the next write.** On `http.response.start` the head is built and checked
exactly as uvicorn does (same bytes, same errors), but kept. It goes out

- with the first body message, in the same write (a JSON answer: one write in all; an SSE stream:
  its head with its first chunk);
- for a response without Content-Length (chunked: SSE streams, which may send the start and then
  wait for their first event, as a GET /mcp stream does), at the latest at the end of the current
  event-loop iteration (`loop.call_soon`): its client sees the head as soon as before, one loop
  iteration at most. A response with Content-Length is not a stream: its client needs the whole
  body, which cannot come sooner than the body's own write, so its head waits for it (the app
  sends the body right after the start anyway), which saves a callback per JSON answer;
- when the app returns or raises with the head still held (`run_asgi`), before uvicorn closes
  the connection for a response left unfinished, so the client sees what it saw before.

Whichever comes first writes it; the others find nothing held. Nothing else writes to the
connection while a response is under way (a pipelined request waits for this one to complete;
server.py's `_refuse` writes a held head before it closes), so the order of bytes on the wire is
unchanged; only the number of writes drops. When the client is gone (`disconnected`) a held head
is dropped, as uvicorn drops every later send.

**Two checks per response**, not two regular-expression searches per header: the names joined with
`"a"`, the values with `" "`, each checked once for the bytes uvicorn's pattern refuses. Both
patterns are one byte class, so the joined bytes hold a refused byte exactly when one header does,
and neither separator is refused. A response with both a bad name and a bad value reports the name
(uvicorn reports whichever header comes first); either way the response is refused as before.
Content-Length, Transfer-Encoding and Connection are read as uvicorn reads them, in order.

`OneWriteHttpProtocol` is uvicorn's httptools protocol building this class in place of uvicorn's
(server.py's `GatedHttpProtocol` is one).
tests/unit/test_response_cycle.py fails when the uvicorn code this relies on changes.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import httptools
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

# The headers whose values change how the response is framed (uvicorn's `send` reads these three).
FRAMING = frozenset((b"content-length", b"transfer-encoding", b"connection"))

# The bytes uvicorn's two patterns refuse: each pattern is one byte class, so the bytes it matches
# alone are exactly what it searches for. `translate` deletes them in one C pass (cheaper than a search).
NAME_FORBIDDEN = bytes(b for b in range(256) if HEADER_RE.match(bytes((b,))))
VALUE_FORBIDDEN = bytes(b for b in range(256) if HEADER_VALUE_RE.match(bytes((b,))))


class ResponseCycle(RequestResponseCycle):
    """uvicorn's cycle; `send` holds the head until the body's write (see the module docstring)."""

    _head: bytes | None = None  # built, checked, not yet written
    _app: Any = None

    async def run_asgi(self, app: Any) -> None:
        self._app = app
        await super().run_asgi(self._run_app)

    async def _run_app(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self._app(scope, receive, send)
        finally:
            self.flush_head()  # before uvicorn closes a response left unfinished

    def flush_head(self) -> None:
        """Write the held head, if any (dropped if the client is gone)."""
        head = self._head
        if head is not None:
            self._head = None
            if not self.disconnected:
                self.transport.write(head)

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{message['type']}'.")
            self.response_started = True
            self.waiting_for_100_continue = False
            self._head = self._build_head(message["status"], [*self.default_headers, *message.get("headers", ())])
            if self.chunked_encoding is not False:  # no Content-Length: perhaps a stream (module docstring)
                asyncio.get_running_loop().call_soon(self.flush_head)
        elif not self.response_complete:
            if message["type"] != "http.response.body":
                raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{message['type']}'.")
            self._send_body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"Unexpected ASGI message '{message['type']}' sent, after response already completed.")

    def _send_body(self, body: bytes, more_body: bool) -> None:
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
            data = b""
        elif self.chunked_encoding:
            data = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            if not more_body:
                data += b"0\r\n\r\n"
        else:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            data = body
        head = self._head
        if head is not None:
            self._head = None
            data = b"".join((head, data))
        if data:
            self.transport.write(data)
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()

    def _build_head(self, status: int, headers: list[Any]) -> bytes:
        """The status line and headers, as uvicorn 0.55 writes them; sets the framing state."""
        if self.access_log:
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(self.scope),
                self.scope["method"],
                get_path_with_query_string(self.scope),
                self.scope["http_version"],
                status,
            )
        names = b"a".join([name for name, _ in headers])
        values = b" ".join([value for _, value in headers])
        if len(names.translate(None, NAME_FORBIDDEN)) != len(names):
            raise RuntimeError("Invalid HTTP header name.")
        if len(values.translate(None, VALUE_FORBIDDEN)) != len(values):
            raise RuntimeError("Invalid HTTP header value.")
        if not names.islower():  # uvicorn writes names lower-cased (ours already are)
            headers = [(name.lower(), value) for name, value in headers]
        has_connection_close = False
        for name, value in [(name, value) for name, value in headers if name in FRAMING]:
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection" and b"close" in [token.lower().strip() for token in value.split(b",")]:
                self.keep_alive = False
                has_connection_close = True
        fields = list(map(b": ".join, headers))
        if not self.keep_alive and not has_connection_close:
            fields.append(b"connection: close")
        if self.chunked_encoding is None and self.scope["method"] != "HEAD" and status not in (204, 304):
            self.chunked_encoding = True  # neither Content-Length nor Transfer-Encoding
            fields.append(b"transfer-encoding: chunked")
        fields.append(b"\r\n")  # the blank line that ends the head
        return STATUS_LINE[status] + b"\r\n".join(fields)


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, its responses written by `ResponseCycle`."""

    def on_headers_complete(self) -> None:
        """uvicorn 0.55's (httptools_impl.py), building a `ResponseCycle`."""
        parser = self.parser
        http_version = parser.get_http_version()
        self.scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            self.scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        url = httptools.parse_url(self.url)
        path = url.path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        self.scope["path"] = self.root_path + path
        self.scope["raw_path"] = self.root_path.encode("ascii") + url.path
        self.scope["query_string"] = url.query or b""
        app = self.app
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency or len(self.tasks) >= self.limit_concurrency
        ):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        existing = self.cycle
        self.cycle = ResponseCycle(
            scope=self.scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        if existing is None or existing.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:  # pipelined: it waits for the response under way
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))
