"""A lean HTTP/1.1 keep-alive client for the remote backend's hot path.

Why not httpx here: on this project's 2-core benchmark machine an
`httpx.AsyncClient` alone (its own core, against the bench echo server)
managed 1,270 / 640 / 450 requests/s at 1 / 16 / 64 concurrent requests:
~600 µs of CPU per request in anyio cancel scopes, h11 and header models,
plus a connection pool whose bookkeeping is O(connections * waiters) per
request. This client, an asyncio protocol around the `httptools` parser
(already installed with uvicorn[standard]), does one `write` per request and
parses in C; see bench/README.md for the before/after. httpx is still used
when an HTTP proxy applies to the backend URL (see `HttpBackend`).

Scope: what a Streamable HTTP MCP backend needs — requests with a body and
Content-Length, responses with Content-Length, chunked or close-delimited
bodies, streamed (SSE) or read whole, TLS, a bounded pool. One request at a
time per connection (no pipelining), no redirects, no cookies.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httptools

from paygate.core.urls import redact_url


class H1Error(ConnectionError):
    """The connection failed or the response was malformed."""


class ConnectFailed(H1Error):
    """No connection could be made: the request was never sent."""


class ResponseTooLarge(H1Error):
    """The body passed the limit given to `read`."""


class Response:
    """A response whose body arrives through `aiter_bytes` / `aiter_lines` / `read`."""

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.status_code = 0
        self.headers: dict[str, str] = {}  # lower-case names
        self._chunks: collections.deque[bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self.complete = False
        self._error: BaseException | None = None
        self.size = 0
        self.limit = 0  # set by `read`: the body may not grow past it (0: unbounded, for streams)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        while True:
            while self._chunks:
                yield self._chunks.popleft()
            if self._error is not None:
                raise self._error
            if self.complete:
                return
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    async def aiter_lines(self) -> AsyncIterator[str]:
        """Lines without their terminator; \\n, \\r\\n and \\r all end a line (as SSE says)."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        skip_lf = False  # a \r ended the last chunk: a \n opening the next one belongs to it
        async for chunk in self.aiter_bytes():
            text = decoder.decode(chunk)
            if skip_lf and text.startswith("\n"):
                text = text[1:]
            skip_lf = text.endswith("\r")
            lines = (pending + text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
            pending = lines.pop()
            for line in lines:
                yield line
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending

    async def read(self, limit: int) -> bytes:
        """The whole body; `ResponseTooLarge` (and the connection dropped) past `limit` bytes."""
        self.limit = limit
        if self.size > limit:  # arrived with the headers, before the limit was known
            self._conn.close()
            raise ResponseTooLarge(f"response body over {limit} bytes")
        while not self.complete and self._error is None:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if self._error is not None:
            raise self._error
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        return body


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.headers_done: asyncio.Future[None] | None = None
        self.closed = False
        self.keep_alive = True

    # asyncio.Protocol ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes nobody asked for: the stream is out of step
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(H1Error(f"malformed response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        resp = self.response
        if resp is None or resp.complete:
            return
        # A body with neither Content-Length nor chunking ends when the connection does.
        headers_seen = self.headers_done is not None and self.headers_done.done()
        if headers_seen and "content-length" not in resp.headers and "transfer-encoding" not in resp.headers:
            resp.complete = True
            resp._wake()
            return
        self._fail(H1Error(f"connection closed mid-response: {exc or 'EOF'}"))

    # httptools callbacks --------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        resp = self.response
        assert resp is not None and self.headers_done is not None
        resp.status_code = self.parser.get_status_code()
        if not self.headers_done.done():
            self.headers_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        resp = self.response
        assert resp is not None
        resp.size += len(body)
        if resp.limit and resp.size > resp.limit:
            self._fail(ResponseTooLarge(f"response body over {resp.limit} bytes"))
            self.close()
            return
        resp._chunks.append(body)
        resp._wake()

    def on_message_complete(self) -> None:
        resp = self.response
        assert resp is not None
        self.keep_alive = self.parser.should_keep_alive()
        resp.complete = True
        resp._wake()

    # use -------------------------------------------------------------------------
    def start(self, request: bytes) -> Response:
        if self.transport is None or self.closed or self.transport.is_closing():
            raise H1Error("connection closed")
        self.response = Response(self)
        self.headers_done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.response

    def _fail(self, exc: BaseException) -> None:
        if self.headers_done is not None and not self.headers_done.done():
            self.headers_done.set_exception(exc)
        if self.response is not None and not self.response.complete:
            self.response._error = exc
            self.response._wake()

    def reusable(self) -> bool:
        return not self.closed and self.keep_alive and self.response is not None and self.response.complete

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Exchange:
    """One request on a pooled connection, held from `__aenter__` to `__aexit__`. A class rather than an
    `@asynccontextmanager`: the generator machinery cost ~2 µs per request on the backend's hot path."""

    __slots__ = ("_conn", "_pool", "_request")

    def __init__(self, pool: H1Pool, request: bytes) -> None:
        self._pool = pool
        self._request = request
        self._conn: _Connection | None = None

    async def __aenter__(self) -> Response:
        conn = self._conn = await self._pool._acquire()
        try:
            resp = conn.start(self._request)
            assert conn.headers_done is not None
            await conn.headers_done
        except BaseException:
            self._conn = None
            self._pool._release(conn, False)
            raise
        return resp

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool._release(conn, exc_type is None and conn.reusable())


def default_ssl_context() -> ssl.SSLContext:
    """The CAs httpx would trust: $SSL_CERT_FILE / $SSL_CERT_DIR, else certifi's bundle."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


# An idle connection is not reused after this long: servers close theirs after a few seconds (Node's
# default is 5 s), and a request written as the server's FIN arrives would fail as if the server were
# down. Shorter than the common server timeouts, long enough to keep a busy pool warm.
KEEPALIVE_EXPIRY = 4.0


class H1Pool:
    """Keep-alive connections to one origin; at most `max_connections` open, idle ones reused for at
    most `keepalive_expiry` seconds."""

    def __init__(
        self,
        url: str,
        max_connections: int = 256,
        connect_timeout: float = 30.0,
        user_agent: str = "paygate-mcp",
        ssl_context: ssl.SSLContext | None = None,
        connect_host: str | None = None,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {redact_url(url)!r}")
        self.host = parts.hostname
        # Where to connect, when not to the URL's host: a vetted address the name was resolved to
        # (webhook SSRF pinning). Host header and TLS server name stay the URL's host.
        self.connect_host = connect_host or self.host
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = (ssl_context or default_ssl_context()) if parts.scheme == "https" else None
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.target = ((parts.path or "/") + (f"?{parts.query}" if parts.query else "")).encode()
        self._host_header = (host if default_port else f"{host}:{self.port}").encode()
        self._user_agent = user_agent.encode()
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.keepalive_expiry = keepalive_expiry
        self._clock = clock
        self._idle: list[tuple[_Connection, float]] = []  # with the time each went idle; newest last
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False
        self._last_method = ""
        self._last_headers: dict[str, str] | None = None
        self._last_head = b""

    def encode(self, method: str, headers: dict[str, str], body: bytes) -> bytes:
        """The request's bytes. The head is cached per (method, headers object): callers pass the
        same dict for as long as its contents hold, and a new dict when they change."""
        if method != self._last_method or headers is not self._last_headers:
            lines = [
                method.encode(),
                b" ",
                self.target,
                b" HTTP/1.1\r\nHost: ",
                self._host_header,
                b"\r\nUser-Agent: ",
                self._user_agent,
                b"\r\n",
            ]
            for name, value in headers.items():
                lines += [name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n"]
            self._last_method, self._last_headers = method, headers
            self._last_head = b"".join(lines) + b"Content-Length: "
        return b"".join((self._last_head, str(len(body)).encode(), b"\r\n\r\n", body))

    def stream(self, method: str, headers: dict[str, str], body: bytes = b"") -> _Exchange:
        """Send one request; `async with` yields the response once its headers are in."""
        return _Exchange(self, self.encode(method, headers, body))

    async def _acquire(self) -> _Connection:
        while True:
            if self._closed:
                raise H1Error("client closed")
            if self._idle:
                self._expire_idle()
            while self._idle:
                conn, _ = self._idle.pop()
                if not conn.closed:
                    return conn
                self._open -= 1  # the server closed it while it was idle
            if self._open < self.max_connections:
                break
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    self._wake_one()  # it had been woken: pass the turn on
                raise
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise

    def _expire_idle(self) -> None:
        """Close the connections idle for longer than `keepalive_expiry` (the oldest are first)."""
        deadline = self._clock() - self.keepalive_expiry
        stale = 0
        while stale < len(self._idle) and self._idle[stale][1] < deadline:
            self._idle[stale][0].close()
            stale += 1
        if stale:
            del self._idle[:stale]
            self._open -= stale

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        extra: dict[str, Any] = {"ssl": self.ssl, "server_hostname": self.host} if self.ssl else {}
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Connection, self.connect_host, self.port, **extra), self.connect_timeout
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        except TimeoutError as exc:
            raise ConnectFailed(f"connect to {self.host}:{self.port} timed out") from exc
        return conn

    def _release(self, conn: _Connection, reusable: bool) -> None:
        conn.response = None
        conn.headers_done = None
        if reusable and not self._closed:
            self._idle.append((conn, self._clock()))
        else:
            conn.close()
            self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()
            self._open -= 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(H1Error("client closed"))
        self._waiters.clear()
