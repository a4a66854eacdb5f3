"""The concurrency stage and its priority queue driven directly on one event loop with a fake clock
(traffic/concurrency.py, traffic/priority.py): grants follow the tiers (with promotion) and arrival
order within a tier, nobody is charged while waiting, refused calls are never charged, and credits are
conserved. The call behind the stage is a stand-in that charges a ledger and waits for the test."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.core.records import KeyRecord
from paygate.mcp.call_context import CallContext
from paygate.mcp.jsonrpc import Message
from paygate.traffic.chain import ToolCall
from paygate.traffic.concurrency import ConcurrencyLimits
from paygate.traffic.priority import RANK, TIERS, PriorityQueue, QueueConfig

PRICE = 1
INITIAL = 100


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """What the stage wraps: charge (the gate's part), then wait until the test ends the call."""

    balances: dict[str, int]
    spent: dict[str, int] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)  # call ids, in the order they got past the stage
    ends: dict[str, asyncio.Event] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)

    async def proceed(self, call: ToolCall) -> Message:
        cid, key = call.msg_id, call.ctx.raw_key
        assert key is not None
        self.balances[key] -= PRICE
        self.spent[key] = self.spent.get(key, 0) + PRICE
        self.started.append(cid)
        await self.ends.setdefault(cid, asyncio.Event()).wait()
        if cid in self.fail:
            raise RuntimeError("the call failed inside")
        return {"jsonrpc": "2.0", "id": cid, "result": {}}


def stage(per_key: int, per_tool: int, config: QueueConfig, clock: Clock) -> ConcurrencyLimits:
    records = {f"k{i}": KeyRecord(f"h{i}", "pg_", "0000", f"k{i}", INITIAL, 0.0) for i in range(8)}

    def identify(raw: str | None) -> KeyRecord | None:
        return records.get(raw or "")

    return ConcurrencyLimits(per_key, per_tool, PriorityQueue(config), identify, now=clock)


def call(cid: str, key: str, tool: str = "t") -> ToolCall:
    return ToolCall(cid, tool, {"name": tool}, CallContext(raw_key=key, request_id=cid))


async def settle() -> None:
    """Let every task run until each waits on something (a few loop passes; no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def scenario(
    arrivals: list[tuple[int, str, float]], releases: list[float], promote_ms: int, depth: int
) -> tuple[list[str], list[str], Backend, dict[str, Any]]:
    """One holder, then `arrivals` (key, tier, seconds after the previous) wait for the tool's only slot;
    then the running call ends every `releases` seconds. Returns who got the slot, in order, what the
    model says the order should be, the backend's ledger and each call's answer."""
    clock = Clock()
    tiers = {f"h{k}": tier for k, tier, _ in arrivals}  # a key's tier is its last one drawn
    config = QueueConfig(enabled=True, max_queue_depth=depth, promote_after_ms=promote_ms, key_tiers=tiers)
    config.max_wait_ms = dict.fromkeys(TIERS, 3_600_000)  # deadlines are real time: none ends here
    limits = stage(0, 1, config, clock)
    backend = Backend({f"k{i}": INITIAL for i in range(8)})
    answers: dict[str, Any] = {}

    async def run(c: ToolCall) -> None:
        answers[c.msg_id] = await limits.around(c, backend.proceed)

    tasks = [asyncio.create_task(run(call("holder", "k7")))]
    await settle()
    waiting: list[tuple[float, int, int, str]] = []  # the model: (arrived, base rank, seq, id)
    for seq, (key, _, gap) in enumerate(arrivals):
        clock.now += gap
        cid = f"c{seq}"
        tasks.append(asyncio.create_task(run(call(cid, f"k{key}"))))
        await settle()
        if len(waiting) < depth:
            waiting.append((clock.now, RANK[tiers[f"h{key}"]], seq, cid))
        else:
            assert answers[cid]["error"]["data"]["queue"] == "full"
    expected: list[str] = ["holder"]
    step = promote_ms / 1000
    for gap in [*releases, *[0.0] * len(arrivals)]:
        clock.now += gap
        running = backend.started[-1]
        assert not any(cid in backend.started for *_, cid in waiting)  # nobody charged while waiting
        backend.ends.setdefault(running, asyncio.Event()).set()
        await settle()
        if not waiting:
            break

        def effective(w: tuple[float, int, int, str]) -> tuple[int, int]:
            arrived, base, seq, _ = w
            promoted = int((clock.now - arrived) // step) if step else 0
            return max(0, base - promoted), seq

        nxt = min(waiting, key=effective)
        waiting.remove(nxt)
        expected.append(nxt[3])
    backend.ends.setdefault(backend.started[-1], asyncio.Event()).set()
    await asyncio.gather(*tasks)
    assert limits.in_flight == 0 and limits.queue.depth() == 0 and not limits.keys and not limits.tools
    return backend.started, expected, backend, answers


arrival = st.tuples(st.integers(0, 5), st.sampled_from(TIERS), st.sampled_from([0.0, 0.4, 1.0, 2.5]))


@settings(max_examples=150, deadline=None)
@given(
    arrivals=st.lists(arrival, max_size=12),
    releases=st.lists(st.sampled_from([0.0, 0.3, 1.0, 3.0]), max_size=12),
    promote_ms=st.sampled_from([0, 1000, 2500]),
    depth=st.integers(1, 12),
)
def test_grants_follow_tiers_promotion_and_arrival_and_money_is_conserved(
    arrivals: list[tuple[int, str, float]], releases: list[float], promote_ms: int, depth: int
) -> None:
    started, expected, backend, answers = asyncio.run(scenario(arrivals, releases, promote_ms, depth))
    assert started == expected
    for cid, answer in answers.items():  # served calls were charged once; refused ones never
        assert ("error" in answer) == (cid not in started)
        if "error" in answer:
            assert answer["error"]["code"] == -32005
    for key, balance in backend.balances.items():
        served = sum(1 for cid in started if cid == "holder" and key == "k7") + sum(
            1 for seq, (k, _, _) in enumerate(arrivals) if f"k{k}" == key and f"c{seq}" in started
        )
        assert balance + backend.spent.get(key, 0) == INITIAL
        assert backend.spent.get(key, 0) == served * PRICE


def test_within_a_tier_the_first_to_arrive_is_first_and_a_waiter_that_cannot_fit_holds_nobody_up() -> None:
    async def main() -> list[str]:
        clock = Clock()
        limits = stage(1, 2, QueueConfig(enabled=True, promote_after_ms=0), clock)
        backend = Backend({f"k{i}": INITIAL for i in range(8)})
        tasks = [asyncio.create_task(limits.around(call("a1", "k1"), backend.proceed))]
        tasks.append(asyncio.create_task(limits.around(call("b1", "k2"), backend.proceed)))
        await settle()  # the tool's two slots taken, by k1 and k2
        for cid, key in (("a2", "k1"), ("c1", "k3"), ("d1", "k4")):
            tasks.append(asyncio.create_task(limits.around(call(cid, key), backend.proceed)))
            await settle()
        assert limits.queue.depth() == 3
        backend.ends["b1"].set()  # a tool slot frees: a2 is first but its key is full; c1 is next
        await settle()
        backend.ends["a1"].set()  # k1's slot and a tool slot free: a2 now fits
        await settle()
        for cid in ("c1", "a2"):
            backend.ends.setdefault(cid, asyncio.Event()).set()
        await settle()
        backend.ends.setdefault("d1", asyncio.Event()).set()
        await asyncio.gather(*tasks)
        return backend.started

    assert asyncio.run(main()) == ["a1", "b1", "c1", "a2", "d1"]


def test_slots_come_back_after_a_failure_inside_and_after_cancellation_running_or_waiting() -> None:
    async def main() -> None:
        limits = stage(1, 0, QueueConfig(enabled=True), Clock())
        backend = Backend({f"k{i}": INITIAL for i in range(8)}, fail={"boom"})
        failing = asyncio.create_task(limits.around(call("boom", "k1"), backend.proceed))
        await settle()
        waiting = asyncio.create_task(limits.around(call("w", "k1"), backend.proceed))
        await settle()
        assert (limits.in_flight, limits.queue.depth()) == (1, 1)
        waiting.cancel()  # its client went away while it waited
        await settle()
        assert limits.queue.depth() == 0 and limits.queue.outcomes["normal", "cancelled"] == 1
        backend.ends["boom"].set()
        with pytest.raises(RuntimeError):
            await failing
        assert limits.in_flight == 0 and not limits.keys
        running = asyncio.create_task(limits.around(call("long", "k1"), backend.proceed))
        await settle()
        assert limits.in_flight == 1
        running.cancel()
        await settle()
        assert limits.in_flight == 0 and not limits.keys and not limits.tools
        assert backend.started == ["boom", "long"]  # the cancelled waiter never got to the charge

    asyncio.run(main())
