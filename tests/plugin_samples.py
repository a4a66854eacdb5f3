"""Plugins the plugin tests load by `module:attribute` (tests/unit/test_plugin_*.py, tests/api/test_plugins.py)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from paygate.plugins import CallInfo, Deny, GateDecision, Plugin, PluginRequest, PluginResponse, ToolReply


class Recorder(Plugin):
    """Records the gate's decisions; serves them at /plugins/recorder/seen (admin) and a public ping."""

    name = "recorder"
    version = "2.1.0"
    public_paths = frozenset({"ping"})

    def __init__(self) -> None:
        self.decisions: list[dict[str, Any]] = []
        self.denies: list[dict[str, Any]] = []
        self.started = 0

    async def on_start(self) -> None:
        self.started += 1

    async def after_gate(self, decision: GateDecision) -> None:
        self.decisions.append(asdict(decision))

    async def on_deny(self, decision: GateDecision) -> None:
        self.denies.append(asdict(decision))

    async def on_request(self, request: PluginRequest) -> PluginResponse | None:
        if request.path == "ping":
            return PluginResponse(200, {"pong": True, "admin": request.admin})
        if request.path == "seen":
            return PluginResponse(200, {"decisions": self.decisions, "denies": self.denies, "started": self.started})
        if request.path == "echo" and request.method == "POST":
            return PluginResponse(201, {"got": request.json(), "sawAdminKey": "x-admin-key" in request.headers})
        if request.path == "boom":
            raise RuntimeError("the plugin broke")
        return None


class Pricing(Plugin):
    """`add` costs 3 more; `announce` is set to -5 (clamped to 0); others keep their price."""

    name = "pricing"
    version = "1.0.0"

    async def transform_price(self, call: CallInfo, price: int) -> int | None:
        if call.tool == "add":
            return price + 3
        if call.tool == "announce":
            return -5
        return None


class Gatekeeper(Plugin):
    """Refuses echo "forbidden" (before_gate) and echo "hold" (before_tool_call); upper-cases echo
    "shout:..." (before_tool_call); adds `pluginNote` to echo's results (after_tool_call)."""

    name = "gatekeeper"

    async def before_gate(self, call: CallInfo) -> Deny | None:
        return Deny("forbidden text") if call.arguments.get("text") == "forbidden" else None

    async def before_tool_call(self, call: CallInfo) -> Deny | dict[str, Any] | None:
        text = call.arguments.get("text")
        if text == "hold":
            return Deny("held by the gatekeeper")
        if isinstance(text, str) and text.startswith("shout:"):
            return {**call.arguments, "text": text.upper()}
        call.arguments["text"] = "mutated"  # its own copy: changes nothing
        return None

    async def after_tool_call(self, call: CallInfo, reply: ToolReply) -> dict[str, Any] | None:
        if call.tool == "echo" and reply.result is not None:
            return {**reply.result, "pluginNote": f"cost {reply.credits}"}
        return None


class Broken(Plugin):
    """Every call hook fails: raises, or (after_tool_call) never returns."""

    name = "broken"
    timeout_ms = 50

    async def before_gate(self, call: CallInfo) -> Deny | None:
        raise RuntimeError("before_gate broke")

    async def transform_price(self, call: CallInfo, price: int) -> int | None:
        raise ValueError("transform_price broke")

    async def before_tool_call(self, call: CallInfo) -> Deny | dict[str, Any] | None:
        return "not an answer"  # type: ignore[return-value]

    async def after_tool_call(self, call: CallInfo, reply: ToolReply) -> dict[str, Any] | None:
        await asyncio.Event().wait()  # hangs: bounded by timeout_ms
        return None


# for the loader's errors ------------------------------------------------------------------------------
NOT_A_PLUGIN = object()


class NoHooks:
    name = "nohooks"


class SyncHook(Plugin):
    name = "synchook"

    def before_gate(self, call: CallInfo) -> None:  # not async: refused at load
        return None


class BadName(Plugin):
    name = "Bad Name!"

    async def on_start(self) -> None:
        return None


class Configurable(Plugin):
    name = "configurable"

    def __init__(self, surcharge: int = 1) -> None:
        self.surcharge = surcharge

    async def transform_price(self, call: CallInfo, price: int) -> int | None:
        return price + self.surcharge


class Explodes(Plugin):
    name = "explodes"

    def __init__(self) -> None:
        raise RuntimeError("cannot build")


class SameNameAsRecorder(Recorder):
    pass


INSTANCE = Configurable(5)
