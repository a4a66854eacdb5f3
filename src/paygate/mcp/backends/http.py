"""A remote MCP server over Streamable HTTP (JSON or SSE answers).

One pooled HTTP client and one upstream session (`Mcp-Session-Id`). The
client's API key and the admin key are never forwarded: requests upstream
carry only the headers built here. On a 404 (the server forgot our
session) we handshake again and retry once. The session is DELETEd on stop.

The session's GET stream is kept open: a server sends there what belongs to
no request of ours (list changes, and requests such as a `roots/list` it
makes on its own). It is read in a context of its own, so the relay routes
what arrives there as it would a stdio server's (mcp/relay.py). A server
that refuses it (405, or another 4xx but 409 and 429) is not asked again
in that session.

No wait upstream outlasts its call: a request, with any re-handshake it needs,
ends at the tool timeout; the `notifications/cancelled` sent after a timeout
or a client's cancellation goes out in the background, bounded by
CANCEL_TIMEOUT (or the tool timeout, if shorter), so the answer to the client
never waits for it; other notifications and answers to the server wait at
most MESSAGE_TIMEOUT. An answer that is not JSON (a body labelled JSON, or an
SSE event of the answer's stream) fails the call like an unreachable server.

The client is the lean `h1.H1Pool` (why: see h1.py — httpx costs ~600 µs of
CPU per request); httpx is used instead when an HTTP proxy applies to the
backend URL, as httpx honours the proxy environment variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from paygate import __version__
from paygate.core.urls import redact_url
from paygate.http.h1 import ConnectFailed, H1Error, H1Pool, Response, ResponseTooLarge
from paygate.mcp.backends.base import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    HandshakeMixin,
    MessageListener,
)
from paygate.mcp.backends.deadlines import Deadlines
from paygate.mcp.backends.modern_era import routing_headers
from paygate.mcp.jsonrpc import Message
from paygate.tracing.context import TRACEPARENT

log = logging.getLogger("paygate.backend.http")

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
RECONNECT_MAX = 30.0
LISTEN_RETRY = 0.25  # seconds before reopening the session's GET stream; doubles to RECONNECT_MAX
USER_AGENT = f"paygate-mcp/{__version__}"
CANCEL_TIMEOUT = 5.0  # the longest a notifications/cancelled is given (the tool timeout, if shorter)
MESSAGE_TIMEOUT = 10.0  # the longest a notification or an answer to the server's request is given


class _Body(Protocol):
    """What both clients' responses offer."""

    status_code: int

    @property
    def headers(self) -> Any: ...
    def aiter_bytes(self) -> AsyncIterator[bytes]: ...
    def aiter_lines(self) -> AsyncIterator[str]: ...


class _Client(Protocol):
    def stream(
        self,
        method: str,
        headers: dict[str, str],
        body: bytes = b"",
    ) -> contextlib.AbstractAsyncContextManager[_Body]: ...
    async def aclose(self) -> None: ...


def _proxied_client(url: str, max_connections: int) -> _Client:
    # imported here: httpx (~0.15 s to import) is loaded only by a gateway whose backend is behind a proxy
    from paygate.mcp.backends.http_proxied import HttpxClient

    return HttpxClient(url, max_connections, USER_AGENT)


def _proxied(url: str) -> bool:
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    return bool(proxies.get(parts.scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(
        parts.hostname or ""
    )


class HttpBackend(HandshakeMixin):
    def __init__(self, url: str, label: str = "remote", max_connections: int = 256) -> None:
        self.url = url
        self.shown_url = redact_url(url)  # what logs and messages show: no credentials, no query values
        self.label = label
        self._client: _Client = (
            _proxied_client(url, max_connections)
            if _proxied(url)
            else H1Pool(url, max_connections, user_agent=USER_AGENT)
        )
        self._header_cache: tuple[tuple[str | None, str | None], dict[str, str]] | None = None
        self._session_id: str | None = None
        self._protocol_version: str | None = None
        self._ready = False
        self._next_id = 0
        self._init_result: dict[str, Any] | None = None
        self._tools: list[dict[str, Any]] = []
        self._listeners: list[MessageListener] = []
        self._reconnect: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._handshake_lock = asyncio.Lock()
        self._cancels: set[asyncio.Task[None]] = set()  # notifications/cancelled on their way
        self._deadlines = Deadlines()

    async def start(self) -> None:
        await self._connect()

    async def _connect(self) -> None:
        async with self._handshake_lock:
            self._session_id = None
            self._protocol_version = None
            await self.handshake()
            self._protocol_version = (self._init_result or {}).get("protocolVersion")
            self._ready = True
            log.info("%s: connected to %s (%d tools)", self.label, self.shown_url, len(self._tools))
            self._listen_to_session()

    async def stop(self) -> None:
        self._ready = False
        for task in (self._reconnect, self._listener, *self._cancels):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._session_id:
            with contextlib.suppress(H1Error, TimeoutError):
                await asyncio.wait_for(self._delete_session(), 5.0)
        await self._client.aclose()

    async def _delete_session(self) -> None:
        async with self._client.stream("DELETE", self._headers()):
            pass

    def _headers(self) -> dict[str, str]:
        """The upstream headers; the same dict while the session holds (never mutate it)."""
        state = (self._session_id, self._protocol_version)
        if self._header_cache is None or self._header_cache[0] != state:
            headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
            if self._session_id:
                headers["Mcp-Session-Id"] = self._session_id
            if self._protocol_version:
                headers["MCP-Protocol-Version"] = self._protocol_version
            self._header_cache = (state, headers)
        return self._header_cache[1]

    def _mark_down(self, why: str) -> None:
        if self._ready:
            log.warning("%s: backend unreachable (%s); reconnecting", self.label, why)
        self._ready = False
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = 0.25
        while not self._ready:
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except (BackendError, H1Error) as exc:
                log.debug("%s: reconnect failed: %s", self.label, exc)
                delay = min(delay * 2, RECONNECT_MAX)

    async def request(self, method: str, params: Any, timeout: float) -> Message:
        self._next_id += 1
        message: Message = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if self.modern:
            params = self.stamped(params)
        if params is not None:
            message["params"] = params
        deadline = self._deadlines.arm(timeout)  # not asyncio.timeout: 7-13 µs a call (deadlines.py)
        try:
            for attempt in (1, 2):
                reply = await self._post(message)
                if reply is not None:
                    return reply
                if attempt == 1 and method != "initialize":
                    await self._connect()  # the server dropped our session: new one, then retry once
        except asyncio.CancelledError:
            if not self._deadlines.expired(deadline):  # the client cancelled it, or went away: tell the server
                self._cancel_upstream(message["id"], "cancelled by the client", timeout)
                raise
            self._cancel_upstream(message["id"], "timeout", timeout)
            raise BackendTimeout(f"{self.label}: no answer to {method} within {timeout:g}s") from None
        except H1Error as exc:
            self._mark_down(str(exc) or type(exc).__name__)
            raise BackendUnavailable(f"{self.label}: {exc}", delivered=not isinstance(exc, ConnectFailed)) from exc
        finally:
            self._deadlines.disarm(deadline)
        raise BackendUnavailable(f"{self.label}: session lost and could not be re-established", delivered=False)

    async def _post(self, message: Message) -> Message | None:
        """POST one request; None means the server no longer knows our session."""
        body = orjson.dumps(message)
        headers = self._headers()
        if self.modern:  # a 2026-07-28 server routes on these and checks them against the body
            headers = {**headers, **routing_headers(message["method"], message.get("params") or {})}
        trace = TRACEPARENT.get()
        if trace is not None:  # a traced call: the server's spans join the gateway's trace (W3C Trace Context)
            headers = {**headers, "traceparent": trace}
        async with self._client.stream("POST", headers, body) as resp:
            if resp.status_code == 404 and self._session_id and message.get("method") != "initialize":
                return None
            if message.get("method") == "initialize" and "mcp-session-id" in resp.headers:
                self._session_id = resp.headers["mcp-session-id"]
            ctype = resp.headers.get("content-type", "")
            if resp.status_code >= 400 and "json" not in ctype:
                raise BackendUnavailable(f"{self.label}: HTTP {resp.status_code} from backend")
            if ctype.startswith("text/event-stream"):
                return await self._from_sse(resp, message["id"])
            data = await self._read_limited(resp)
        try:
            parsed = orjson.loads(data) if data else None
        except orjson.JSONDecodeError as exc:  # the call fails (and is settled) like any failed backend call
            raise BackendUnavailable(f"{self.label}: backend answered invalid JSON (HTTP {resp.status_code})") from exc
        if isinstance(parsed, list):  # a batch answer to a single request: take ours
            parsed = next((m for m in parsed if isinstance(m, dict) and m.get("id") == message["id"]), None)
        if not isinstance(parsed, dict):
            raise BackendUnavailable(f"{self.label}: backend answered with no JSON-RPC message")
        return parsed

    async def _read_limited(self, resp: _Body) -> bytes:
        if isinstance(resp, Response):  # the lean client: whole body at once, size bounded as it arrives
            try:
                return await resp.read(MAX_RESPONSE_BYTES)
            except ResponseTooLarge as exc:
                raise BackendUnavailable(f"{self.label}: {exc}") from exc
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise BackendUnavailable(f"{self.label}: response over {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _from_sse(self, resp: _Body, want_id: Any) -> Message:
        """Read SSE events until the answer to `want_id`; pass other messages on."""
        try:
            async with contextlib.aclosing(_sse_messages(resp, strict=True)) as messages:
                async for message in messages:
                    if "method" not in message and message.get("id") == want_id:
                        return message
                    if "method" in message:
                        self.dispatch_incoming(message)
        except _NotJson as exc:
            raise BackendUnavailable(f"{self.label}: backend sent an SSE event that is not JSON") from exc
        raise BackendUnavailable(f"{self.label}: SSE stream ended without an answer")

    def _listen_to_session(self) -> None:
        """(Re)open the session's GET stream, in an empty context: whatever client request the
        caller is serving, what arrives there is not its (relay.py)."""
        if self._listener is not None:
            self._listener.cancel()
        self._listener = asyncio.get_running_loop().create_task(self._listen(), context=contextvars.Context())

    async def _listen(self) -> None:
        headers = {k: v for k, v in self._headers().items() if k != "Content-Type"}
        headers["Accept"] = "text/event-stream"
        delay = LISTEN_RETRY
        while self._ready:
            try:
                async with self._client.stream("GET", headers) as resp:
                    if 400 <= resp.status_code < 500 and resp.status_code not in (409, 429):
                        return  # none here (405), or the session is gone (request() reconnects, reopens)
                    if resp.status_code == 200 and resp.headers.get("content-type", "").startswith("text/event-stream"):
                        async with contextlib.aclosing(_sse_messages(resp)) as messages:
                            async for message in messages:
                                delay = LISTEN_RETRY
                                if "method" in message:
                                    self.dispatch_incoming(message)
            except H1Error as exc:
                log.debug("%s: session stream: %s", self.label, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    def _cancel_upstream(self, our_id: int, reason: str, timeout: float) -> None:
        """Tell the server, in the background: the answer to the client never waits for it."""
        task = asyncio.get_running_loop().create_task(self._send_cancel(our_id, reason, min(CANCEL_TIMEOUT, timeout)))
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def _send_cancel(self, our_id: int, reason: str, timeout: float) -> None:
        with contextlib.suppress(BackendUnavailable, H1Error):
            await self._send(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": our_id, "reason": reason},
                },
                timeout,
            )

    async def notify(self, method: str, params: Any = None) -> None:
        message: Message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message, MESSAGE_TIMEOUT)

    async def respond(self, message: Message) -> None:
        await self._send(message, MESSAGE_TIMEOUT)

    async def _send(self, message: Message, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                async with self._client.stream("POST", self._headers(), orjson.dumps(message)) as resp:
                    await self._read_limited(resp)  # read to the end, so the connection can be reused
        except H1Error as exc:
            raise BackendUnavailable(f"{self.label}: {exc}") from exc
        except TimeoutError as exc:
            raise BackendUnavailable(f"{self.label}: no answer to a message within {timeout:g}s") from exc


class _NotJson(ValueError):
    """An SSE event on an answer's stream whose data is not JSON."""


async def _sse_messages(resp: _Body, strict: bool = False) -> AsyncGenerator[Message, None]:
    """The JSON-RPC messages of an SSE body, as its events complete. Anything else is skipped, but with
    `strict` (an answer's stream) data that is not JSON raises `_NotJson`; empty data (a priming event)
    is skipped either way."""
    data_lines: list[str] = []
    async for line in resp.aiter_lines():
        if line.startswith("data:"):
            data_lines.append(line[5:].lstrip(" "))
        elif line == "" and data_lines:
            payload, data_lines = "\n".join(data_lines), []
            try:
                message = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                if strict and payload.strip():
                    raise _NotJson(payload[:200]) from exc
                continue
            if isinstance(message, dict):
                yield message
