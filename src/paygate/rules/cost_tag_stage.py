"""Cost tags on the call path: a call stage for plain tools/call (check the header before any charge,
attribute the settled cost after), and a check for the calls that do not pass the call stages (batches,
tasks, x402), which are checked alike but not attributed (docs/money-rules.md#cost-tags)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from paygate.core import cost_tags as ct
from paygate.core.records import KeyRecord
from paygate.mcp.call_context import CallContext
from paygate.mcp.gate_answers import denial_error
from paygate.mcp.jsonrpc import Message
from paygate.rules.cost_tags import CostTags
from paygate.traffic.chain import Proceed, ToolCall


class CostTagStage:
    name = "cost_tags"

    def __init__(self, tags: CostTags, identify: Callable[[str | None], KeyRecord | None]) -> None:
        self.tags = tags
        self.identify = identify
        self.enabled = tags.on

    def follow(self) -> None:
        self.enabled = self.tags.on

    def _judge(self, msg_id: Any, tool: str, ctx: CallContext) -> tuple[Message | None, dict[str, str]]:
        """(the refusal, or None; the call's tags)."""
        headers = ctx.client.headers
        raw = headers.get(ct.HEADER) if headers else None
        key = self.identify(ctx.raw_key) if self.tags.required else None
        said = self.tags.check(raw, key)
        if isinstance(said, tuple):
            return denial_error(msg_id, said[0], said[1], {"tool": tool}), {}
        return None, said

    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        refused, tags = self._judge(call.msg_id, call.tool, call.ctx)
        if refused is not None:  # before any charge
            return refused
        reply = await proceed(call)
        key, credits = call.ctx.key, call.notes.get("credits")
        if tags and key is not None and type(credits) is int and self.tags.config["enabled"]:
            self.tags.record(key, call.tool, dict(tags), credits, time.time())
        return reply

    def refuse(self, msg_id: Any, tool: str, params: dict[str, Any], ctx: CallContext) -> Message | None:
        return self._judge(msg_id, tool, ctx)[0]
