"""Concurrency limits (docs/traffic.md, "Concurrency limits"): the innermost call stage.

A call takes one slot of its key's (`maxConcurrentPerKey`) and one of its tool's (`maxConcurrentPerTool`)
before the gate, and holds both through the gate, the charge, the forward and the settlement; the slots
are given back however the call ends (an answer, an exception, the client cancelling or hanging up).
When a limit is reached the call is refused with -32005 and `Retry-After`, before any charge, or, with
the priority queue on (traffic/priority.py), waits for a slot in its key's tier's turn.

Only calls with a usable key are counted: the gate refuses the others anyway, and counting them would
let callers without a key take every slot of a tool. The counts are this instance's (a Redis fleet's
instances each enforce the limits on their own calls).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.core import errors
from paygate.core.records import KeyRecord
from paygate.mcp import jsonrpc
from paygate.mcp.gate_answers import denial_error
from paygate.mcp.jsonrpc import Message
from paygate.mcp.origin import Origin
from paygate.traffic.chain import Proceed, ToolCall
from paygate.traffic.priority import OUTCOMES, TIERS, PriorityQueue, Waiter

LIMITS = ("key", "tool")
CAUSES = ("immediate", "queue_full", "queue_timeout", "queue_off")  # why a call was refused
MAX_RETRY_AFTER = 60


class ConcurrencyLimits:
    """The call stage: slots per key and per tool, the refusals, and the grants to the queue's waiters."""

    name = "concurrency"

    def __init__(
        self,
        per_key: int,
        per_tool: int,
        queue: PriorityQueue,
        identify: Callable[[str | None], KeyRecord | None],
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_key = per_key
        self.per_tool = per_tool
        self.queue = queue
        self.identify = identify
        self.now = now
        self.keys: dict[str, int] = {}  # key hash → calls in flight
        self.tools: dict[str, int] = {}  # tool → calls in flight
        self.in_flight = 0
        self.rejections: Counter[tuple[str, str]] = Counter()  # (limit, cause)
        self._avg_seconds = 0.0  # how long a call holds its slots, smoothed: what Retry-After says
        self.enabled = bool(per_key or per_tool)

    # the call path ------------------------------------------------------------------------------------
    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        key = self.identify(call.ctx.raw_key)
        if key is None or not key.active or key.suspended:
            return await proceed(call)  # the gate refuses it: it takes no slot
        key_hash, tool = key.key_hash, call.tool
        blocked = self._blocked(key_hash, tool)
        if blocked is None:
            self._take(key_hash, tool)
        elif not self.queue.enabled:
            return self._refuse(call, blocked, "immediate")
        else:
            refused = await self._wait(call, key_hash, tool, blocked)
            if refused is not None:
                return refused
        started = self.now()
        try:
            return await proceed(call)
        finally:
            self._release(key_hash, tool, self.now() - started)

    def _blocked(self, key_hash: str, tool: str) -> str | None:
        """The limit a call with this key and tool would go over, if any."""
        if self.per_key and self.keys.get(key_hash, 0) >= self.per_key:
            return "key"
        if self.per_tool and self.tools.get(tool, 0) >= self.per_tool:
            return "tool"
        return None

    def _take(self, key_hash: str, tool: str) -> None:
        self.keys[key_hash] = self.keys.get(key_hash, 0) + 1
        self.tools[tool] = self.tools.get(tool, 0) + 1
        self.in_flight += 1

    def _release(self, key_hash: str, tool: str, held: float | None) -> None:
        for counts, name in ((self.keys, key_hash), (self.tools, tool)):
            left = counts[name] - 1
            if left:
                counts[name] = left
            else:
                del counts[name]
        self.in_flight -= 1
        if held is not None:
            self._avg_seconds += (held - self._avg_seconds) * 0.2
        if self.queue.depth():
            self.grant()

    def grant(self) -> None:
        """Give free slots to waiters, the highest tier first and by arrival within a tier; a waiter whose
        own limit is still full does not hold up those behind it."""
        queue = self.queue
        now = self.now()
        queue.promote(now)
        for waiter in queue.in_order():
            if waiter.future.done():  # cancelled or timed out, not yet taken out by its call
                queue.remove(waiter)
            elif self._blocked(waiter.key_hash, waiter.tool) is None:
                self._take(waiter.key_hash, waiter.tool)
                queue.remove(waiter)
                queue.finish(waiter, "granted", now)
                waiter.future.set_result(True)

    async def _wait(self, call: ToolCall, key_hash: str, tool: str, blocked: str) -> Message | None:
        """Wait in the queue: None once a slot was taken for this call, else the refusal to answer."""
        queue = self.queue
        waiter = queue.add(key_hash, tool, blocked, self.now())
        if waiter is None:
            return self._refuse(call, blocked, "queue_full")
        origin = call.ctx.origin
        watcher = None
        if origin is not None:  # a client that hangs up while its call waits gives its place up
            watcher = asyncio.get_running_loop().create_task(_cancel_when_gone(origin, asyncio.current_task()))
        try:
            async with asyncio.timeout(queue.max_wait_seconds(waiter.tier)):
                granted = await waiter.future
        except TimeoutError:
            if waiter.granted():  # granted in the same loop pass as the deadline: the slot is ours
                return None
            self._drop(waiter, "timeout")
            return self._refuse(call, waiter.limit, "queue_timeout", waiter)
        except asyncio.CancelledError:  # the client went away (or the gateway is stopping)
            if waiter.granted():
                self._release(key_hash, tool, None)
            else:
                self._drop(waiter, "cancelled")
            if watcher is None or not watcher.done() or watcher.cancelled() or not watcher.result():
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # our own doing (the watcher)
            return jsonrpc.error(call.msg_id, errors.REQUEST_CANCELLED, "The client disconnected")
        finally:
            if watcher is not None:
                watcher.cancel()
        if not granted:
            return self._refuse(call, waiter.limit, "queue_off", waiter)
        return None

    def _drop(self, waiter: Waiter, outcome: str) -> None:
        self.queue.remove(waiter)
        self.queue.finish(waiter, outcome, self.now())

    def retry_after(self) -> int:
        """Whole seconds, at least 1: about how long a call holds its slot here."""
        return max(1, min(MAX_RETRY_AFTER, math.ceil(self._avg_seconds)))

    def _refuse(self, call: ToolCall, limit: str, cause: str, waiter: Waiter | None = None) -> Message:
        self.rejections[limit, cause] += 1
        retry = self.retry_after()
        call.ctx.add_header(b"retry-after", str(retry).encode())
        maximum = self.per_key if limit == "key" else self.per_tool
        text = (
            f"this key has {maximum} calls in flight" if limit == "key" else f"{maximum} calls of this tool in flight"
        )
        data: dict[str, Any] = {"tool": call.tool, "limit": limit, "maxConcurrent": maximum, "retryAfterSeconds": retry}
        if waiter is not None:
            data["tier"] = waiter.tier
            data["waitedMs"] = round((self.now() - waiter.arrived) * 1000)
        if cause == "queue_full":
            text += "; the priority queue is full"
            data["queue"] = "full"
        elif cause == "queue_timeout":
            text += f"; no slot within the {waiter.tier if waiter else ''} tier's wait"
            data["queue"] = "timeout"
        elif cause == "queue_off":
            text += "; the priority queue was switched off"
            data["queue"] = "off"
        return denial_error(call.msg_id, "concurrency_limited", text, data)

    # runtime changes -----------------------------------------------------------------------------------
    def set_limits(self, per_key: int, per_tool: int) -> None:
        self.per_key, self.per_tool = per_key, per_tool
        self.enabled = bool(per_key or per_tool)
        if self.queue.depth():
            self.grant()  # a raised (or removed) limit frees slots for those waiting

    def queue_changed(self) -> None:
        if not self.queue.enabled:
            self.queue.send_away()
        elif self.queue.depth():
            self.grant()


async def _cancel_when_gone(origin: Origin, task: asyncio.Task[Any] | None) -> bool:
    if await origin.gone() and task is not None:
        task.cancel()
        return True
    return False


class LimitsCollector(Collector):
    """/metrics: calls holding slots, refusals, and the priority queue (labels bounded: fixed sets)."""

    def __init__(self, limits: ConcurrencyLimits) -> None:
        self._limits = limits

    def collect(self) -> Iterable[Metric]:
        limits, queue = self._limits, self._limits.queue
        yield GaugeMetricFamily(
            "paygate_concurrency_in_flight", "Tool calls holding a concurrency slot", value=limits.in_flight
        )
        refused = CounterMetricFamily(
            "paygate_concurrency_rejections",
            "Tool calls refused with -32005, by the limit reached and why (at once, queue full, wait over)",
            labels=["limit", "cause"],
        )
        for limit in LIMITS:
            for cause in CAUSES:
                refused.add_metric([limit, cause], limits.rejections[limit, cause])
        yield refused
        depth = GaugeMetricFamily(
            "paygate_priority_queue_depth", "Tool calls waiting for a concurrency slot, by tier", labels=["tier"]
        )
        for tier, count in queue.depth_by_tier().items():
            depth.add_metric([tier], count)
        yield depth
        waits = CounterMetricFamily(
            "paygate_priority_queue_waits",
            "Tool calls that waited in the priority queue, by the tier they arrived in and how the wait ended",
            labels=["tier", "outcome"],
        )
        for tier in TIERS:
            for outcome in OUTCOMES:
                waits.add_metric([tier, outcome], queue.outcomes[tier, outcome])
        yield waits
