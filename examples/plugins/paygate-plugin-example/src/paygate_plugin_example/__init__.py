"""An example PayGate plugin: a surcharge on one tool, a log line after each call, two endpoints."""

from __future__ import annotations

import logging
from collections import Counter

from paygate.plugins import CallInfo, Plugin, PluginRequest, PluginResponse, ToolReply

log = logging.getLogger("paygate_plugin_example")


class ExamplePlugin(Plugin):
    name = "example"
    version = "1.0.0"
    public_paths = frozenset({"health"})  # every other path under /plugins/example/ needs the admin key

    def __init__(self, tool: str = "add", surcharge: int = 2) -> None:
        self.tool = tool
        self.surcharge = surcharge
        self.calls: Counter[str] = Counter()

    async def transform_price(self, call: CallInfo, price: int) -> int | None:
        """The gateway's price plus the surcharge for our tool; None (keep the price) for the others."""
        return price + self.surcharge if call.tool == self.tool else None

    async def after_tool_call(self, call: CallInfo, reply: ToolReply) -> None:
        self.calls[call.tool] += 1
        log.info("example plugin: %s by %s cost %s credit(s)", call.tool, call.key_masked, reply.credits)

    async def on_request(self, request: PluginRequest) -> PluginResponse | None:
        if request.method == "GET" and request.path == "health":
            return PluginResponse(200, {"ok": True})
        if request.method == "GET" and request.path == "stats":
            return PluginResponse(200, {"calls": dict(self.calls), "tool": self.tool, "surcharge": self.surcharge})
        return None  # 404
