"""The Backend contract and the handshake every backend shares.

A backend owns one upstream MCP session. It speaks JSON-RPC with ids of its
own, so client ids never reach the server and never collide. Errors:

    BackendError
     ├── BackendUnavailable   the process is dead / the endpoint unreachable (.delivered)
     └── BackendTimeout       no answer within the tool timeout
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from paygate import __version__
from paygate.mcp.backends.modern_era import init_result_from, speaks_only_modern, stamp
from paygate.mcp.jsonrpc import LATEST_HANDSHAKE_VERSION, Message
from paygate.mcp.modern import MODERN_VERSION

log = logging.getLogger("paygate.backend")

MessageListener = Callable[[Message], None]
# What the gateway tells a server it can do: what any client behind it may. Each request the server
# sends is checked against what its own client declared (mcp/relay.py).
CLIENT_CAPABILITIES: dict[str, Any] = {
    "sampling": {},
    "elicitation": {"form": {}, "url": {}},
    "roots": {"listChanged": True},
}


class BackendError(Exception):
    pass


class BackendUnavailable(BackendError):
    """`delivered` is False when the request certainly never reached the server (nothing ran),
    so a charge taken for it is refunded whatever the refund policy says."""

    def __init__(self, message: str, *, delivered: bool = True) -> None:
        super().__init__(message)
        self.delivered = delivered


class BackendTimeout(BackendError):
    pass


class Backend(Protocol):
    label: str

    @property
    def ready(self) -> bool: ...
    @property
    def init_result(self) -> dict[str, Any] | None: ...
    @property
    def tools(self) -> list[dict[str, Any]]: ...

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def request(self, method: str, params: Any, timeout: float) -> Message: ...
    async def notify(self, method: str, params: Any = None) -> None: ...
    async def respond(self, message: Message) -> None: ...
    def add_listener(self, listener: MessageListener) -> None: ...
    # list the server's tools again (a call named a tool the cached list lacks)
    async def refresh_tools(self, timeout: float = 30.0) -> None: ...


class HandshakeMixin:
    """initialize → notifications/initialized → tools/list, shared by every transport."""

    label: str
    modern: bool = False  # the server speaks only 2026-07-28 (modern_era.py)
    _ready: bool
    _init_result: dict[str, Any] | None
    _tools: list[dict[str, Any]]
    _listeners: list[MessageListener]

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def init_result(self) -> dict[str, Any] | None:
        return self._init_result

    @property
    def tools(self) -> list[dict[str, Any]]:
        return self._tools

    async def request(self, method: str, params: Any, timeout: float) -> Message:
        raise NotImplementedError

    async def notify(self, method: str, params: Any = None) -> None:
        raise NotImplementedError

    async def handshake(self, timeout: float = 30.0) -> None:
        self.modern = False
        response = await self.request(
            "initialize",
            {
                "protocolVersion": LATEST_HANDSHAKE_VERSION,
                "capabilities": CLIENT_CAPABILITIES,
                "clientInfo": {"name": "paygate-mcp", "version": __version__},
            },
            timeout,
        )
        if "error" in response and speaks_only_modern(response["error"]):
            await self._discover(timeout)
            return
        if "error" in response:
            raise BackendUnavailable(f"{self.label}: initialize failed: {response['error']}")
        self._init_result = response.get("result") or {}
        await self.notify("notifications/initialized")
        await self.refresh_tools(timeout)

    async def _discover(self, timeout: float) -> None:
        """A 2026-07-28-only server: no handshake, every request stamped from now on (modern_era.py)."""
        self.modern = True
        response = await self.request("server/discover", {}, timeout)
        result = response.get("result")
        if "error" in response or not isinstance(result, dict):
            raise BackendUnavailable(f"{self.label}: server/discover failed: {response.get('error')}")
        self._init_result = init_result_from(result)
        log.info("%s: the server speaks only %s; requests carry its envelope", self.label, MODERN_VERSION)
        await self.refresh_tools(timeout)

    def stamped(self, params: Any) -> Any:
        """The params a request carries upstream: as given, or with the 2026-07-28 envelope."""
        return stamp(params, CLIENT_CAPABILITIES) if self.modern else params

    async def refresh_tools(self, timeout: float = 30.0) -> None:
        capabilities = (self._init_result or {}).get("capabilities") or {}
        if "tools" not in capabilities:
            self._tools = []
            return
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(100):  # a bound on pages, against a server that never stops paging
            params = {"cursor": cursor} if cursor else {}
            response = await self.request("tools/list", params, timeout)
            if "error" in response:
                raise BackendUnavailable(f"{self.label}: tools/list failed: {response['error']}")
            page = response.get("result") or {}
            tools.extend(t for t in page.get("tools", []) if isinstance(t, dict) and "name" in t)
            cursor = page.get("nextCursor")
            if not cursor:
                break
        self._tools = tools

    def add_listener(self, listener: MessageListener) -> None:
        self._listeners.append(listener)

    def dispatch_incoming(self, message: Message) -> None:
        """A server-initiated notification or request: refresh on list_changed, then fan out."""
        if message.get("method") == "notifications/tools/list_changed":
            asyncio.get_running_loop().create_task(self._refresh_quietly())
        for listener in self._listeners:
            try:
                listener(message)
            except Exception:  # a listener's bug must not kill the reader
                log.exception("listener failed on %s", message.get("method"))

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh_tools()
        except BackendError as exc:
            log.warning("%s: could not refresh tools: %s", self.label, exc)
