"""What a plugin is, and what its hooks see and return (docs/plugins.md).

A plugin is any object with a `name` (and ideally a `version`) and one or more of the hooks in
`HOOKS`, each an `async def`. Subclassing `Plugin` is the typed way to write one; it defines no hook
itself, so the gateway calls only the hooks a plugin does define (a hook left out costs nothing).

Signatures (every hook optional, every hook a coroutine function):

    async def before_gate(self, call: CallInfo) -> Deny | None
    async def transform_price(self, call: CallInfo, price: int) -> int | None
    async def after_gate(self, decision: GateDecision) -> None
    async def on_deny(self, decision: GateDecision) -> None
    async def before_tool_call(self, call: CallInfo) -> Deny | dict[str, Any] | None
    async def after_tool_call(self, call: CallInfo, reply: ToolReply) -> dict[str, Any] | None
    async def on_request(self, request: PluginRequest) -> PluginResponse | None
    async def on_start(self) -> None
    async def on_stop(self) -> None
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

# The hooks, in the order a call meets them (then the HTTP and lifecycle ones).
CALL_HOOKS = ("before_gate", "before_tool_call", "transform_price", "after_gate", "on_deny", "after_tool_call")
HOOKS = (*CALL_HOOKS, "on_request", "on_start", "on_stop")
# The reference's camelCase names, as GET /plugins lists them (its users know these).
REFERENCE_NAMES = {
    "before_gate": "beforeGate",
    "after_gate": "afterGate",
    "on_deny": "onDeny",
    "transform_price": "transformPrice",
    "before_tool_call": "beforeToolCall",
    "after_tool_call": "afterToolCall",
    "on_request": "onRequest",
    "on_start": "onStart",
    "on_stop": "onStop",
}


class Plugin:
    """Base class for plugins: set `name` and `version`, define the hooks you need as `async def`.

    `public_paths`: paths under `/plugins/<name>/` that `on_request` serves without an admin key
    (exact matches, e.g. `{"status"}`); every other path needs the admin key (X-Admin-Key).
    `timeout_ms`: how long one hook call may take before the gateway gives up on it (the config's
    `timeoutMs` for this plugin wins)."""

    name: str = ""
    version: str = "0.0.0"
    public_paths: frozenset[str] = frozenset()
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Deny:
    """A refusal from `before_gate` or `before_tool_call`: the call is answered with `plugin_denied`
    and this reason, and nothing is charged."""

    reason: str


@dataclass(frozen=True, slots=True)
class CallInfo:
    """One gated tools/call as a plugin sees it. Never the API key itself: its masked form and name.
    `arguments` is the plugin's own copy (changing it changes nothing: return new arguments instead)."""

    tool: str
    arguments: dict[str, Any]
    key_masked: str | None
    key_name: str | None
    request_id: str


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The gate's decision on a call (after_gate, on_deny): `credits` charged (net of refunds, for an
    allowed call) or required (for a denied one); `reason` the deny reason, None when allowed."""

    tool: str
    allowed: bool
    reason: str | None
    credits: int
    key_masked: str | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class ToolReply:
    """The settled answer of a call (after_tool_call): `result` the backend's result (None for an
    error), `error` the JSON-RPC error (None for a success), `credits` what the call cost in the end."""

    result: dict[str, Any] | None
    error: dict[str, Any] | None
    credits: int | None


@dataclass(frozen=True, slots=True)
class PluginRequest:
    """An HTTP request to `/plugins/<name>/<path>` (on_request). `admin` says whether it came with a
    valid admin key (always True on a path that is not public)."""

    method: str
    path: str  # below the plugin's prefix, without the leading "/"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; X-Admin-Key and X-API-Key are left out
    body: bytes
    admin: bool

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass(frozen=True, slots=True)
class PluginResponse:
    """What on_request answers: `body` sent as JSON (any JSON value) unless `raw` is given."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
