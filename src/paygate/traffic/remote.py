"""A second upstream server the traffic controls talk to (the canary, the mirror's shadow): its URL vetted
under the webhook SSRF rules, and an `HttpBackend` kept connected in the background.

Why the SSRF rules: an admin key can point these at any URL, and the gateway usually runs next to things
an admin of the gateway should not reach through it (metadata endpoints, databases on loopback). Unless
`trafficAllowPrivate` is set, a URL naming a local or non-public host is refused when it is set, and
every address its name resolves to must be public. The backend then connects by name: a DNS answer that
changes afterwards is not re-checked on each request (the connection pool keeps its sockets), which is
the remaining risk, stated in docs/traffic.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from paygate.core.domain_errors import Invalid
from paygate.mcp.backends.base import Backend
from paygate.mcp.backends.http import HttpBackend
from paygate.webhooks.ssrf import Resolver, UnsafeUrl, check_url, resolve, shown, system_resolver

log = logging.getLogger("paygate.traffic")

RESOLVE_TIMEOUT = 5.0
CONNECT_TIMEOUT = 15.0  # an admin's POST waits this long for the first handshake
RETRY_MAX = 30.0  # seconds between connection attempts, at most, for a backend started in the background

BackendFactory = Callable[[str, str], Backend]  # (url, label) -> backend; tests may give their own


def http_backend(url: str, label: str) -> Backend:
    return HttpBackend(url, label=label, max_connections=64)


def check_static(url: str, allow_private: bool, what: str) -> None:
    """The URL's form and literal host (no DNS): for config files at start. Invalid names the problem."""
    try:
        check_url(url, allow_private, what)
    except UnsafeUrl as exc:
        raise Invalid(f"Invalid request: {exc}".replace("webhookAllowPrivate / --webhook-allow-private", HINT)) from exc


HINT = "trafficAllowPrivate / PAYGATE_TRAFFIC_ALLOW_PRIVATE"


async def vet_url(url: str, allow_private: bool, what: str, resolver: Resolver = system_resolver) -> None:
    """`check_static`, then every address the name resolves to must be public (unless allowed)."""
    check_static(url, allow_private, what)
    if allow_private:
        return
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            await resolve(url, allow_private, resolver)
    except UnsafeUrl as exc:
        raise Invalid(
            f"Invalid request: {what}: {exc}".replace("webhookAllowPrivate / --webhook-allow-private", HINT)
        ) from exc
    except (OSError, TimeoutError) as exc:
        raise Invalid(f"Invalid request: {what} {shown(url)} does not resolve ({type(exc).__name__})") from exc


class RemoteServer:
    """One backend and the task that keeps trying to connect it until it is up (or it is closed)."""

    def __init__(self, backend: Backend, url: str) -> None:
        self.backend = backend
        self.shown_url = shown(url)
        self.in_flight = 0  # requests sent through it now; a replaced server is closed once they finish
        self._idle = asyncio.Event()
        self._idle.set()
        self.last_error: str | None = None
        self._connector: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def ready(self) -> bool:
        return not self._closed and self.backend.ready

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if not self.in_flight:
            self._idle.set()

    async def connect(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """The first handshake, awaited (an admin's POST): an exception when it fails."""
        async with asyncio.timeout(timeout):
            await self.backend.start()

    def connect_in_background(self) -> None:
        """Keep trying (start-up, a fleet peer's change): calls skip it until it is up."""
        self._connector = asyncio.get_running_loop().create_task(self._keep_connecting())

    async def _keep_connecting(self) -> None:
        delay = 0.5
        while not self._closed and not self.backend.ready:
            try:
                await self.connect()
                self.last_error = None
                return
            except Exception as exc:  # any failure (refused, handshake error, timeout) is retried
                self.last_error = f"connect: {type(exc).__name__}"
                log.warning("%s: could not connect to %s (%s); retrying", self.backend.label, self.shown_url, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def close(self, drain: float = 0.0) -> None:
        """Stop it, after the requests in flight finish (waiting up to `drain` seconds for them)."""
        self._closed = True
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if drain > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain)
        with contextlib.suppress(Exception):
            await self.backend.stop()

    def describe(self) -> dict[str, Any]:
        return {"url": self.shown_url, "connected": self.ready, "lastError": self.last_error}
