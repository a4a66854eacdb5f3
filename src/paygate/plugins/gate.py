"""Where the plugins meet a call: before the gate (in the dispatcher's admit step, so every charged
path meets them: direct calls, batches, tasks), around the call (a traffic call stage), and after the
gate's decision (the gate.allow / gate.deny events, off the call's path)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from paygate.billing.outcomes import Refused
from paygate.billing.service import BillingService
from paygate.core.gate import Denial
from paygate.core.records import KeyRecord, UsageEvent
from paygate.events.hub import Event
from paygate.mcp.gate_answers import refusal
from paygate.mcp.jsonrpc import Message
from paygate.plugins.base import CallInfo, Deny, GateDecision, ToolReply
from paygate.plugins.runner import PluginRunner
from paygate.traffic.chain import Proceed, ToolCall

if TYPE_CHECKING:
    from paygate.mcp.call_context import CallContext

log = logging.getLogger("paygate.plugins")
PublishDeny = Callable[[Refused, "CallContext", float], None]
STOP_SECONDS = 5.0  # at shutdown, how long the decisions still queued may take to be handed over
MAX_QUEUED_DECISIONS = 10_000  # after_gate / on_deny notifications waiting; beyond, dropped and counted


def call_info(
    billing: BillingService, tool: str, arguments: Any, ctx: CallContext
) -> tuple[CallInfo, KeyRecord | None]:
    key = ctx.key or billing.resolve(ctx.raw_key)
    own = copy.deepcopy(arguments) if isinstance(arguments, dict) else {}  # the plugin's own copy
    info = CallInfo(tool, own, key.masked if key else None, key.name if key else None, ctx.request_id)
    return info, key


class PluginGate:
    """The dispatcher's `plugins` (set only when a plugin has before_gate or transform_price)."""

    def __init__(self, runner: PluginRunner, billing: BillingService, publish_deny: PublishDeny) -> None:
        self.runner = runner
        self.billing = billing
        self.publish_deny = publish_deny

    async def __call__(
        self, msg_id: Any, tool: str, arguments: Any, ctx: CallContext, input_bytes: int
    ) -> Message | int | None:
        """Before the gate: the refusal to answer (nothing charged), the price to charge, or None."""
        info, key = call_info(self.billing, tool, arguments, ctx)
        deny = await self.runner.before_gate(info)
        if deny is not None:
            return refuse(self.billing, self.publish_deny, msg_id, key, tool, deny, ctx)
        return await self.runner.transform_price(info, lambda: self.billing.quote(key, tool, input_bytes))

    async def refusal(self, msg_id: Any, tool: str, arguments: Any, ctx: CallContext) -> Message | None:
        """before_gate alone, for a call paid outside the ledger (x402): its refusal, or None."""
        info, key = call_info(self.billing, tool, arguments, ctx)
        deny = await self.runner.before_gate(info)
        return None if deny is None else refuse(self.billing, self.publish_deny, msg_id, key, tool, deny, ctx)


def refuse(
    billing: BillingService,
    publish: PublishDeny,
    msg_id: Any,
    key: KeyRecord | None,
    tool: str,
    deny: Deny,
    ctx: CallContext,
) -> Message:
    started = time.perf_counter()
    refused = refused_by_plugin(billing, key, tool, str(deny.reason)[:200], ctx.request_id)
    publish(refused, ctx, started)  # gate.deny, as for the gate's own refusals (and on_deny from it)
    return refusal(msg_id, refused)


def refused_by_plugin(
    billing: BillingService, key: KeyRecord | None, tool: str, detail: str, request_id: str | None
) -> Refused:
    """Counted and recorded like the gate's refusals, never charged. Shadow mode does not let it
    through: the plugin refused the call, not the price."""
    denial = Denial("plugin_denied", detail)
    metrics = billing.metrics
    metrics.denials_for(denial.reason).inc()
    metrics.tool_calls_for(metrics.tool_label(tool), "denied").inc()
    if key is not None:
        row = UsageEvent(
            time.time(), key.key_hash, key.masked, key.name, tool, 0, False, denial.reason, key.namespace, request_id
        )
        billing.store.record_denial(row)
    return Refused(denial, key, tool, billing.prices.for_tool(tool), 0, None)


class PluginStage:
    """The call stage for before_tool_call / after_tool_call (innermost: after aliases, dedup, cache,
    breaker and limits, right around the gated call)."""

    name = "plugins"

    def __init__(self, runner: PluginRunner, billing: BillingService, publish_deny: PublishDeny) -> None:
        self.runner = runner
        self.billing = billing
        self.publish_deny = publish_deny
        self.before = runner.has("before_tool_call")
        self.after = runner.has("after_tool_call")
        self.enabled = self.before or self.after

    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        info, key = call_info(self.billing, call.tool, call.params.get("arguments"), call.ctx)
        if self.before:
            answer = await self.runner.before_tool_call(info)
            if isinstance(answer, Deny):
                return refuse(self.billing, self.publish_deny, call.msg_id, key, call.tool, answer, call.ctx)
            if answer is not None:  # a new dict: the client's params are never changed
                call.params = {**call.params, "arguments": answer}
                info = CallInfo(info.tool, copy.deepcopy(answer), info.key_masked, info.key_name, info.request_id)
        reply = await proceed(call)
        if not self.after:
            return reply
        result, error = reply.get("result"), reply.get("error")
        seen = ToolReply(copy.deepcopy(result) if isinstance(result, dict) else None, error, call.notes.get("credits"))
        replaced = await self.runner.after_tool_call(info, seen)
        if replaced is not None and isinstance(result, dict):
            reply = {**reply, "result": replaced}  # the charge is settled: a plugin changes what the client sees
        return reply


class Decisions:
    """after_gate / on_deny, fed by the gate.allow / gate.deny events and run in order by one task, so
    a slow plugin never holds a call up."""

    def __init__(self, runner: PluginRunner) -> None:
        self.runner = runner
        self.queue: asyncio.Queue[GateDecision] = asyncio.Queue(MAX_QUEUED_DECISIONS)
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def on_event(self, event: Event) -> None:
        data = event.data
        allowed = event.type == "gate.allow"
        credits = data.get("credits" if allowed else "creditsRequired") or 0
        decision = GateDecision(
            str(data.get("tool")),
            allowed,
            None if allowed else data.get("reason"),
            int(credits),
            data.get("keyMasked"),
            event.request_id,
        )
        try:
            self.queue.put_nowait(decision)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "plugins: %d gate decision(s) dropped: after_gate/on_deny hooks cannot keep up", self.dropped
                )

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """The decisions queued so far are still handed over (for up to STOP_SECONDS), then the task ends."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), STOP_SECONDS)
        self._task.cancel()
        self._task = None

    async def _run(self) -> None:
        while True:
            decision = await self.queue.get()
            try:
                await self.runner.decided(decision)
            finally:
                self.queue.task_done()
