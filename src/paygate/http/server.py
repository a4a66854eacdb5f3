"""The HTTP server: uvicorn's httptools protocol with the gateway's connection limits.

uvicorn alone closes nothing a client holds open: a connection that never sends a byte, or sends
one every few hundred milliseconds, is kept for ever, and an unfinished header line grows in the
parser without bound. `GatedHttpProtocol` adds, from Settings (config_limits.py):

- `maxConnections` (kept under the process's file limit, which is raised toward its hard limit at
  start) and `maxConnectionsPerAddress` (trusted proxies exempt): a connection over either cap gets a
  minimal 503 / 429 and is closed before anything is read.
- `maxHeaderBytes`: the request line and headers; more gets 431 and the connection closed. Bytes are
  counted as they arrive while the headers are incomplete, so an unfinished header is cut as well.
- `headersTimeoutMs`: from the connection's opening (or, on a kept-alive connection, the next
  request's first byte) until that request's headers are complete. 408 (or a plain close if no
  request had started), then close.
- `requestTimeoutMs`: from a request's first byte until its body is complete (the app's work and
  its response, an SSE stream included, are not timed). 408, then close.
- `keepAliveTimeoutMs`: idle between requests; the connection is closed.
- `maxRequestsPerSocket`: the Nth response carries `Connection: close`.

Responses are written by response_cycle.py's `ResponseCycle`: one write per complete response.

One timer per connection, re-armed lazily: a request moves a deadline (an attribute), and the
timer, when it fires early, re-arms for what is left. A busy keep-alive connection so costs about
one timer handle per `headersTimeoutMs`, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
from asyncio import TimerHandle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from paygate.config import Settings
from paygate.core.netaddr import ip_in
from paygate.http.response_cycle import OneWriteHttpProtocol, ResponseCycle
from paygate.metrics import Metrics

# File descriptors kept back from the connection cap: the state file and its journal, backend pipes
# and sockets, webhook deliveries, logs.
FD_RESERVE = 128

# Why a connection was refused or cut (the label values of paygate_connections_refused_total).
REASONS = (
    "max_connections",
    "max_connections_per_address",
    "header_too_large",
    "headers_timeout",
    "request_timeout",
)

# Where a connection stands: waiting for a request, reading its headers, reading its body, waiting
# for the app's response.
IDLE, HEADERS, BODY, APP = 0, 1, 2, 3


def _answer(status: int, message: str) -> bytes:
    body = orjson.dumps({"error": message})
    head = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    return STATUS_LINE[status] + head + body


TOO_MANY_CONNECTIONS = _answer(503, "Too many connections")
TOO_MANY_FROM_ADDRESS = _answer(429, "Too many connections from this address")
HEADER_TOO_LARGE = _answer(431, "Request header fields too large")
REQUEST_TIMEOUT = _answer(408, "Request timeout")


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request already answered."""


def raise_fd_limit(want: int) -> int:
    """Raise the soft RLIMIT_NOFILE toward `want` (never past the hard limit); the soft limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(setting: int, fd_soft_limit: int) -> int:
    """`maxConnections`, kept under the file limit less a reserve (half the limit when it is small)."""
    if fd_soft_limit == resource.RLIM_INFINITY:
        return setting
    room = fd_soft_limit - FD_RESERVE if fd_soft_limit > 2 * FD_RESERVE else fd_soft_limit // 2
    return max(1, min(setting, room))


@dataclass(frozen=True)
class ServerLimits:
    """The limits in the units the protocol uses (seconds; 0 = off where a limit may be off)."""

    max_connections: int
    max_connections_per_address: int
    headers_timeout: float
    request_timeout: float
    keep_alive_timeout: float
    max_requests_per_socket: int
    max_header_bytes: int
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, max_connections: int | None = None) -> ServerLimits:
        return cls(
            max_connections=max_connections or settings.max_connections,
            max_connections_per_address=settings.max_connections_per_address,
            headers_timeout=settings.headers_timeout_ms / 1000,
            request_timeout=settings.request_timeout_ms / 1000,
            keep_alive_timeout=settings.keep_alive_timeout_ms / 1000,
            max_requests_per_socket=settings.max_requests_per_socket,
            max_header_bytes=settings.max_header_bytes,
            trusted_proxies=tuple(settings.trusted_proxies),
        )


class ConnectionGate:
    """Open connections, in all and per peer address, and refusals by reason (for /metrics)."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.open = 0
        self.by_address: dict[str, int] = {}
        self.refused: dict[str, int] = dict.fromkeys(REASONS, 0)

    def admit(self, address: str | None) -> tuple[str | None, str | None]:
        """(the refusal reason or None, the address counted against the per-address cap or None)."""
        limits = self.limits
        if self.open >= limits.max_connections:
            self.refused["max_connections"] += 1
            return "max_connections", None
        counted = None
        cap = limits.max_connections_per_address
        if cap and address is not None and not (limits.trusted_proxies and ip_in(address, limits.trusted_proxies)):
            held = self.by_address.get(address, 0)
            if held >= cap:
                self.refused["max_connections_per_address"] += 1
                return "max_connections_per_address", None
            self.by_address[address] = held + 1
            counted = address
        self.open += 1
        return None, counted

    def release(self, counted: str | None) -> None:
        self.open -= 1
        if counted is not None:
            held = self.by_address[counted] - 1
            if held:
                self.by_address[counted] = held
            else:
                del self.by_address[counted]

    def refusals(self) -> Mapping[str, int]:
        return self.refused


class GatedHttpProtocol(OneWriteHttpProtocol):
    """uvicorn's httptools protocol (each response in one write) under a `ConnectionGate` (see the module
    docstring). Subclassed per server by `protocol_for`, which sets `gate`."""

    gate: ClassVar[ConnectionGate]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = IDLE
        self._deadline = 0.0  # when the current phase expires; 0: never
        self._timer: TimerHandle | None = None
        self._timer_at = 0.0
        self._header_bytes = 0  # received while the current request's headers are incomplete
        self._began = 0.0  # the current request's first byte
        self._requests = 0
        self._admitted = False
        self._counted: str | None = None
        self._refused = False

    # --- connection -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        reason, self._counted = self.gate.admit(self.client[0] if self.client else None)
        if reason is not None:
            self._refused = True
            transport.write(TOO_MANY_CONNECTIONS if reason == "max_connections" else TOO_MANY_FROM_ADDRESS)
            transport.close()
            return
        self._admitted = True
        self._arm(self.loop.time() + self.gate.limits.headers_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = 0.0
        if self._admitted:
            self._admitted = False
            self.gate.release(self._counted)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._phase != BODY:  # headers incomplete (IDLE, HEADERS), or the next request's (APP)
            self._header_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refused:
                return
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:  # served as plain HTTP: no WebSocket (or h2c) is configured
            return
        if self._phase != BODY and self._header_bytes > self.gate.limits.max_header_bytes:
            self._refuse("header_too_large", HEADER_TOO_LARGE)

    # --- parser callbacks -------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        limits = self.gate.limits
        now = self._began = self.loop.time()
        # The first request's headers are timed from the connection's opening (already armed).
        deadline = now + limits.headers_timeout if self._requests else self._deadline
        if limits.request_timeout:
            deadline = min(deadline, now + limits.request_timeout)
        self._phase = HEADERS
        self._arm(deadline)

    def on_headers_complete(self) -> None:
        limits = self.gate.limits
        if self._header_bytes > limits.max_header_bytes and self._header_size() > limits.max_header_bytes:
            self._refuse("header_too_large", HEADER_TOO_LARGE)
            raise _Refused
        self._header_bytes = 0
        super().on_headers_complete()
        self._requests += 1
        if self._requests == limits.max_requests_per_socket:
            self.cycle.keep_alive = False  # this response says `Connection: close`, then the connection closes
        self._phase = BODY
        if limits.request_timeout:
            self._arm(self._began + limits.request_timeout)
        else:
            self._deadline = 0.0

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.cycle.response_complete and not self.pipeline:  # answered before its body had all arrived
            self._phase = IDLE
            self._arm(self.loop.time() + self.gate.limits.keep_alive_timeout)
        else:
            self._phase = APP
            self._deadline = 0.0

    def on_response_complete(self) -> None:
        # uvicorn's, with the keep-alive deadline in place of its own timer
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._phase == APP:
            self._phase = IDLE
            self._arm(self.loop.time() + self.gate.limits.keep_alive_timeout)

    # --- deadlines --------------------------------------------------------------------------------

    def _arm(self, deadline: float) -> None:
        """Set the deadline; start or move the timer only if it would fire too late."""
        self._deadline = deadline
        if self._timer is None or deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = at = min(deadline, self.loop.time() + self.gate.limits.headers_timeout)
            self._timer = self.loop.call_at(at, self._expire)

    def _expire(self) -> None:
        self._timer = None
        deadline = self._deadline
        if not deadline or self.transport.is_closing():
            return
        now = self.loop.time()
        if now + 0.001 < deadline:  # the deadline moved on since the timer was set
            self._timer_at = at = min(deadline, now + self.gate.limits.headers_timeout)
            self._timer = self.loop.call_at(at, self._expire)
            return
        phase = self._phase
        if phase == IDLE:
            self.transport.close()
        elif phase == HEADERS:
            self._refuse("headers_timeout", REQUEST_TIMEOUT)
        elif phase == BODY:
            self._refuse("request_timeout", REQUEST_TIMEOUT)

    # --- refusing ---------------------------------------------------------------------------------

    def _header_size(self) -> int:
        """The request line and headers as parsed (only computed when the byte count is over the limit)."""
        size = len(self.parser.get_method()) + len(self.url) + 12
        for name, value in self.headers:
            size += len(name) + len(value) + 4
        return size + 2

    def _refuse(self, reason: str, answer: bytes) -> None:
        """Answer `answer` unless a response is under way on this connection (then just close), and close."""
        self._refused = True
        self._deadline = 0.0
        self.gate.refused[reason] += 1
        cycle = self.cycle
        busy = self.pipeline or (cycle is not None and not cycle.response_complete and cycle.response_started)
        if cycle is not None and not cycle.response_complete:
            if isinstance(cycle, ResponseCycle):
                cycle.flush_head()  # a head the app already sent goes out first, as it always did
            cycle.disconnected = True  # the app's receive() now returns http.disconnect; its send() is dropped
            cycle.message_event.set()
        if not busy:
            self.transport.write(answer)
        self.transport.close()


def protocol_for(gate: ConnectionGate) -> type[GatedHttpProtocol]:
    """A `GatedHttpProtocol` class bound to `gate` (uvicorn builds one protocol per connection)."""
    return type("PayGateHttpProtocol", (GatedHttpProtocol,), {"gate": gate})


class _NoStartupFailedLine(logging.Filter):
    """The CLI prints its own one-line `error: …` for a failed start; uvicorn's extra line goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Application startup failed")


def build_server(
    settings: Settings, app: Any, metrics: Metrics | None = None, *, log_config: Any = uvicorn.config.LOGGING_CONFIG
) -> uvicorn.Server:
    """The uvicorn server `wrap` serves with (and the tests' in-process gateway): uvloop, httptools
    under the connection limits of `settings`, no access log, no proxy-header rewriting."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _NoStartupFailedLine) for f in uvicorn_log.filters):  # once per process
        uvicorn_log.addFilter(_NoStartupFailedLine())
    fd_limit = raise_fd_limit(settings.max_connections + FD_RESERVE)
    gate = ConnectionGate(ServerLimits.from_settings(settings, connection_cap(settings.max_connections, fd_limit)))
    if metrics is not None:
        metrics.bind_connections(lambda: gate.open, gate.refusals)
    # proxy_headers=False: uvicorn would otherwise rewrite the client address from X-Forwarded-For sent
    # by any local peer; the gateway decides whom to believe itself (--trusted-proxies, core/netaddr.py).
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=protocol_for(gate),
        ws="none",
        log_level="warning",
        log_config=log_config,
        lifespan="on",
        timeout_graceful_shutdown=30,
        timeout_keep_alive=math.ceil(settings.keep_alive_timeout_ms / 1000),  # unused: the protocol's own
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    return uvicorn.Server(config)
