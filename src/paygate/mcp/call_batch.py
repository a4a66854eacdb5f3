"""`tools/call_batch`: several tool calls in one request, billed all or nothing (a PayGate extension, not MCP).

    {"method": "tools/call_batch", "params": {"calls": [{"name": "search", "arguments": {...}}, ...]}}

The batch is checked before anything runs: its shape (1 to `MAX_BATCH_CALLS` calls, each a name and
an optional arguments object), that every tool exists, then the gate for the batch as a whole
(billing/batch.py). A refusal names the call (`error.data.failedIndex`) and why, charges
nothing and runs nothing; every call still publishes its `gate.deny`. Once admitted, every call is
charged in one atomic store operation, the charge is on disk, and the calls run against the backend
at the same time. Each is settled as a single call would be (refund per the refund policy, output
surcharge) and publishes its own `gate.allow`. The answer keeps the calls' order:

    {"results": [{"tool", "result" | "error", "creditsCharged"}, ...], "totalCreditsCharged", "remainingCredits"}

Within a session, the client's `notifications/cancelled` for the batch's id cancels all its calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from paygate.billing.batch import BatchAdmitted, BatchRefused, admit_batch
from paygate.billing.outcomes import Admitted
from paygate.core import errors
from paygate.core.pricing import PriceBook
from paygate.mcp import jsonrpc
from paygate.mcp.cancellation import CancelledByClient
from paygate.mcp.gate_answers import recorded, refusal
from paygate.mcp.jsonrpc import Message

if TYPE_CHECKING:
    from paygate.mcp.call_context import CallContext
    from paygate.mcp.dispatcher import Dispatcher

METHOD = "tools/call_batch"
MAX_BATCH_CALLS = 50


@dataclass(frozen=True, slots=True)
class BatchCall:
    name: str
    params: dict[str, Any]  # the call as the client sent it: what `tools/call` forwards for it

    @property
    def arguments(self) -> Any:
        return self.params.get("arguments")


def parse_calls(params: Any, limit: int = MAX_BATCH_CALLS) -> list[BatchCall] | str:
    """The batch's calls, or why its params are not a batch (the text of a -32602)."""
    calls = params.get("calls") if isinstance(params, dict) else None
    if not isinstance(calls, list):
        return f"{METHOD} needs params.calls (an array of {{name, arguments}})"
    if not calls:
        return f"{METHOD} needs at least one call"
    if len(calls) > limit:
        return f"{METHOD} takes at most {limit} calls, got {len(calls)}"
    out = []
    for i, call in enumerate(calls):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            return f"{METHOD} calls[{i}] needs a name (a string)"
        if not isinstance(call.get("arguments", {}), dict):
            return f"{METHOD} calls[{i}].arguments must be an object"
        out.append(BatchCall(call["name"], call))
    return out


def input_size(prices: PriceBook, call: BatchCall) -> int | None:
    """The call's arguments in bytes when its tool is priced by input size (else 0); None when they nest
    deeper than orjson serialises (no tool needs that)."""
    if not call.arguments or not prices.for_tool(call.name).credits_per_kb_input:
        return 0
    try:
        return len(orjson.dumps(call.arguments))
    except TypeError:
        return None


async def call_batch(d: Dispatcher, msg_id: Any, params: Any, ctx: CallContext) -> Message:
    calls = parse_calls(params)
    if isinstance(calls, str):
        return jsonrpc.error(msg_id, errors.INVALID_PARAMS, calls)
    sizes = []
    for i, call in enumerate(calls):
        size = input_size(d.billing.prices, call) if d.tool_known(call.name) else None
        if size is None:
            why = "arguments nested too deeply" if d.tool_known(call.name) else f"Unknown tool: {call.name}"
            return jsonrpc.error(
                msg_id,
                errors.INVALID_PARAMS,
                f"{why} (calls[{i}]); nothing was charged or run",
                {"failedIndex": i, "tool": call.name},
            )
        sizes.append(size)
    if not d.backend.ready:
        return jsonrpc.error(msg_id, errors.BACKEND_UNAVAILABLE, "Backend unavailable: not ready")
    if d.traffic.checks_on and (checked := _checked(d, msg_id, calls, ctx)) is not None:
        return checked
    prices_set: list[int | None] | None = None
    if d.plugins is not None:  # paygate/plugins: each call may be refused (the batch then is) or priced
        prices_set = []
        for i, (call, size) in enumerate(zip(calls, sizes, strict=True)):
            said = await d.plugins(msg_id, call.name, call.arguments, ctx, size)
            if isinstance(said, dict):
                said["error"]["message"] += f" — calls[{i}] ({call.name}); nothing was charged or run"
                said["error"]["data"]["failedIndex"] = i
                return said
            prices_set.append(said)
    started = time.perf_counter()
    decision = admit_batch(
        d.billing,
        ctx.raw_key,
        [(c.name, s) for c, s in zip(calls, sizes, strict=True)],
        ctx.request_id,
        ctx.client,
        prices_set,
    )
    ctx.rate = decision.rate
    if decision.key is not None:
        ctx.key = decision.key
        ctx.credits = decision.key.credits
    if isinstance(decision, BatchRefused):
        return _refusal(d, msg_id, decision, ctx, started)
    if decision.committed is not None:  # every charge is on disk before any call reaches the backend
        admitted = decision.calls

        def refused(reason: str) -> None:
            for call in admitted:
                d.publish_store_refusal(call, ctx, started, reason)

        unrecorded = await recorded(msg_id, decision.committed, decision.key, ctx, METHOD, refused)
        if unrecorded is not None:
            return unrecorded
    return await _run(d, msg_id, calls, decision, ctx, started)


def _checked(d: Dispatcher, msg_id: Any, calls: list[BatchCall], ctx: CallContext) -> Message | None:
    """The traffic checks (tool dependencies, ...) on every call, before the batch's gate: a refusal names
    the call, and nothing is charged or run."""
    for i, call in enumerate(calls):
        params = {"name": call.name, "arguments": call.arguments}
        refused = d.traffic.precheck(msg_id, call.name, params, ctx)
        if refused is not None and "error" in refused:
            refused["error"]["message"] += f" — calls[{i}] ({call.name}); nothing was charged or run"
            if isinstance(refused["error"].get("data"), dict):
                refused["error"]["data"]["failedIndex"] = i
            return refused
    return None


def _refusal(d: Dispatcher, msg_id: Any, refused: BatchRefused, ctx: CallContext, started: float) -> Message:
    for call in refused.calls:
        d.publish_deny(call, ctx, started)
    reply = refusal(msg_id, refused.refused)
    if (wait := refused.refused.denial.retry_after) is not None:  # a throttle (budget_throttled)
        ctx.add_header(b"retry-after", str(wait).encode())
    error = reply["error"]
    error["message"] += f" — calls[{refused.index}] ({refused.refused.tool}); nothing was charged or run"
    error["data"].update(failedIndex=refused.index, batchCreditsRequired=refused.total)
    return reply


async def _run(
    d: Dispatcher, msg_id: Any, calls: list[BatchCall], admitted: BatchAdmitted, ctx: CallContext, started: float
) -> Message:
    subs = [dataclasses.replace(ctx, session_id=None, surcharge=0) for _ in calls]  # the batch is cancelled whole
    work = _all(
        *(_one(d, msg_id, call, a, sub, started) for call, a, sub in zip(calls, admitted.calls, subs, strict=True))
    )
    try:
        if ctx.session_id is not None and isinstance(msg_id, str | int):
            outcomes = await d.in_flight.run(ctx.session_id, msg_id, work)
        else:
            outcomes = await work
    except CancelledByClient:
        ctx.credits = admitted.key.credits if admitted.key is not None else None
        return ctx.cancelled_by_client(msg_id)
    ctx.surcharge = sum(sub.surcharge for sub in subs)
    results = []
    for call, (reply, credits) in zip(calls, outcomes, strict=True):
        outcome = "error" if "error" in reply else "result"
        results.append({"tool": call.name, outcome: reply.get(outcome), "creditsCharged": credits})
    key = admitted.key
    ctx.credits = key.credits if key is not None else None
    return jsonrpc.result(
        msg_id,
        {"results": results, "totalCreditsCharged": sum(c for _, c in outcomes), "remainingCredits": ctx.credits},
    )


async def _all(*calls: Awaitable[tuple[Message, int]]) -> list[tuple[Message, int]]:
    """The calls at the same time, as a coroutine: run as a task (cancellation.py), it ends *cancelled* when
    cancelled, which a bare gather future does not."""
    return list(await asyncio.gather(*calls))


async def _one(
    d: Dispatcher, msg_id: Any, call: BatchCall, admitted: Admitted, sub: CallContext, started: float
) -> tuple[Message, int]:
    """Run one admitted call and settle it: (the backend's answer, the credits it cost net of refund
    and surcharge). A call cancelled on its way is settled as cancelled before the cancellation goes on."""
    try:
        reply, delivered = await d.forward(msg_id, "tools/call", call.params, sub)
    except asyncio.CancelledError:
        cancelled = jsonrpc.error(msg_id, errors.REQUEST_CANCELLED, "Request cancelled by the client")
        d.settle(admitted, cancelled, sub, True, started)
        raise
    return reply, d.settle(admitted, reply, sub, delivered, started)
