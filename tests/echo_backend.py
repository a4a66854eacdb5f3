"""An in-process double of tests/servers/echo_server.py: the Backend protocol, no process, no pipe.

It lists the same tools (tests/servers/echo_tools.json, the real server's tools/list) and answers
the ones that need no client round trip and no dying process the way the real server does: the
same content, `structuredContent` and `isError` (tests/e2e/test_echo_contract.py holds the two to
it). The others (notifications mid-call, sampling, elicitation, roots, crashes) answer with an
`isError` result that says so: tests that need them run against the real server (marked e2e).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from paygate.mcp.backends.base import BackendTimeout, MessageListener
from paygate.mcp.jsonrpc import LATEST_HANDSHAKE_VERSION, Message

TOOLS_FILE = Path(__file__).resolve().parent / "servers" / "echo_tools.json"
SERVER_INFO = {"name": "paygate-test-echo", "version": "1.0"}
CAPABILITIES = {
    "prompts": {"listChanged": False},
    "resources": {"listChanged": False, "subscribe": False},
    "tools": {"listChanged": False},
}
EMPTY_LISTS = {
    "resources/list": "resources",
    "prompts/list": "prompts",
    "resources/templates/list": "resourceTemplates",
}
# What the real server's tools need that an in-process double cannot honestly give.
REAL_SERVER_ONLY = frozenset(
    {"grow", "progress", "ask_llm", "ask_user", "client_roots", "progress_slowly", "progress_then_crash", "crash"}
)


class ToolFailed(Exception):
    """What the real server reports as an error result (`isError: true`, this text)."""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class EchoBackend:
    """Implements paygate.mcp.backends.base.Backend with the echo server's tools."""

    label = "echo"

    def __init__(self, label: str = "echo") -> None:
        self.label = label
        self._tools: list[dict[str, Any]] = json.loads(TOOLS_FILE.read_text())  # what the server has
        self._listed: list[dict[str, Any]] = []  # what the gateway was told (at start, at each refresh)
        self._ready = False
        self._listeners: list[MessageListener] = []
        self._extra: dict[str, str] = {}  # tools added by grow_quietly: name → its answer
        self._meetings: dict[str, list[asyncio.Event]] = {}
        self.started: list[float] = []  # `seconds` of each slow call begun, and of each cancelled
        self.cancelled: list[float] = []
        self._handlers: dict[str, Callable[..., Awaitable[Any]]] = {
            "echo": self._echo,
            "add": self._add,
            "fail": self._fail,
            "big_output": self._big_output,
            "slow": self._slow,
            "slow_calls": self._slow_calls,
            "meet": self._meet,
            "announce": self._announce,
            "grow_quietly": self._grow_quietly,
        }

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def init_result(self) -> dict[str, Any] | None:
        if not self._ready:
            return None
        return {
            "capabilities": copy.deepcopy(CAPABILITIES),
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "serverInfo": dict(SERVER_INFO),
        }

    @property
    def tools(self) -> list[dict[str, Any]]:
        return self._listed

    async def start(self) -> None:
        self._ready = True
        await self.refresh_tools()

    async def refresh_tools(self, timeout: float = 30.0) -> None:
        """As HandshakeMixin.refresh_tools: a new list, the server's as of now."""
        self._listed = copy.deepcopy(self._tools)

    async def stop(self) -> None:
        self._ready = False

    async def notify(self, method: str, params: Any = None) -> None:
        return None

    async def respond(self, message: Message) -> None:
        return None

    def add_listener(self, listener: MessageListener) -> None:
        self._listeners.append(listener)

    async def request(self, method: str, params: Any, timeout: float) -> Message:
        try:
            result = await asyncio.wait_for(self._answer(method, params or {}), timeout)
        except TimeoutError as exc:
            raise BackendTimeout(f"{self.label}: no answer to {method} within {timeout:g}s") from exc
        return {"jsonrpc": "2.0", "id": 1, **result}

    async def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)  # one loop pass, like an answer arriving from a pipe
        if method == "ping":
            return {"result": {}}
        if method == "tools/list":
            return {"result": {"tools": copy.deepcopy(self._tools)}}
        if method in EMPTY_LISTS:
            return {"result": {EMPTY_LISTS[method]: []}}
        if method == "tools/call":
            return {"result": await self._call(str(params.get("name")), params.get("arguments") or {})}
        return {"error": {"code": -32601, "message": "Method not found", "data": method}}

    async def _call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        handler = self._handlers.get(name)
        try:
            if name in self._extra:
                value: Any = self._extra[name]
            elif name in REAL_SERVER_ONLY:
                raise ToolFailed(f"the in-process echo double cannot run {name}: use the real server (e2e)")
            elif handler is None:
                raise ToolFailed(f"Unknown tool: {name}")
            else:
                value = await handler(**self._arguments(name, arguments))
        except ToolFailed as exc:
            return {"content": [{"text": str(exc), "type": "text"}], "isError": True}
        return {
            "content": [{"text": _text(value), "type": "text"}],
            "isError": False,
            "structuredContent": {"result": value},
        }

    def _arguments(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments, checked against the tool's input schema as the server's pydantic model does
        (required present, integers integers, strings strings); a failure is a tool error."""
        schema = next(t["inputSchema"] for t in self._tools if t["name"] == name)
        out: dict[str, Any] = {}
        for field, spec in schema.get("properties", {}).items():
            if field not in arguments:
                if field in schema.get("required", []):
                    raise ToolFailed(
                        f"Error executing tool {name}: 1 validation error for {name}Arguments\n"
                        f"{field}\n  Field required"
                    )
                continue
            value = arguments[field]
            kind = spec.get("type")
            if kind == "integer" and isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            ok = {
                "integer": isinstance(value, int) and not isinstance(value, bool),
                "number": isinstance(value, int | float) and not isinstance(value, bool),
                "string": isinstance(value, str),
            }.get(kind, True)
            if not ok:
                raise ToolFailed(
                    f"Error executing tool {name}: 1 validation error for {name}Arguments\n"
                    f"{field}\n  Input should be a valid {kind}"
                )
            out[field] = value
        return out

    async def _echo(self, text: str) -> str:
        return text

    async def _add(self, a: int, b: int) -> int:
        return a + b

    async def _fail(self, reason: str = "asked to fail") -> str:
        raise ToolFailed("Error executing tool fail")

    async def _big_output(self, kilobytes: int) -> str:
        return "x" * (kilobytes * 1024)

    async def _slow(self, seconds: float) -> str:
        self.started.append(seconds)
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled.append(seconds)
            raise
        return f"slept {seconds}"

    async def _slow_calls(self) -> str:
        return (
            "started:"
            + ",".join(f"{s:g}" for s in self.started)
            + ";cancelled:"
            + ",".join(f"{s:g}" for s in self.cancelled)
        )

    async def _meet(self, group: str, count: int) -> str:
        arrived = self._meetings.setdefault(group, [])
        here = asyncio.Event()
        arrived.append(here)
        if len(arrived) >= count:
            for waiting in arrived:
                waiting.set()
        try:
            await asyncio.wait_for(here.wait(), 10)
        except TimeoutError:
            arrived.remove(here)
            raise ToolFailed("Error executing tool meet") from None
        return "met"

    async def _announce(self, text: str) -> str:
        # The real server's log notification goes out before its answer, unrelated to any request id.
        message: Message = {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "info", "data": text},
        }
        for listener in self._listeners:
            listener(message)
        return "announced"

    async def _grow_quietly(self, name: str) -> str:
        self._extra[name] = f"{name} works"
        self._tools.append(
            {
                "name": name,
                "description": "added quietly",
                "inputSchema": {"properties": {}, "type": "object", "title": f"{name}Arguments"},
                "outputSchema": {
                    "properties": {"result": {"title": "Result", "type": "string"}},
                    "required": ["result"],
                    "type": "object",
                    "title": f"{name}Output",
                },
            }
        )
        return f"added {name} quietly"
