"""Deadlines on one loop timer (paygate.mcp.backends.deadlines): asyncio.timeout's semantics, cheaper."""

from __future__ import annotations

import asyncio

import pytest

from paygate.mcp.backends.deadlines import Deadlines


async def guarded(deadlines: Deadlines, seconds: float, work: asyncio.Future[None] | float) -> str:
    """Wait for `work` (a future, or a sleep) under a deadline, as HttpBackend.request does."""
    deadline = deadlines.arm(seconds)
    try:
        if isinstance(work, float):
            await asyncio.sleep(work)
        else:
            await work
        return "done"
    except asyncio.CancelledError:
        if deadlines.expired(deadline):
            return "timeout"
        raise
    finally:
        deadlines.disarm(deadline)


async def test_a_deadline_cancels_its_task_and_reads_as_a_timeout() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await guarded(deadlines, 0.05, 10.0) == "timeout"
    assert 0.04 <= loop.time() - started < 5
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # uncancelled: the task goes on normally
    assert await guarded(deadlines, 5.0, 0.0) == "done"


async def test_each_deadline_fires_on_time_whatever_its_order() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    started = loop.time()
    ends: dict[float, float] = {}

    async def one(seconds: float) -> None:
        assert await guarded(deadlines, seconds, 10.0) == "timeout"
        ends[seconds] = loop.time() - started

    # armed latest first: each new one is earlier, so the one timer is moved forward each time
    await asyncio.gather(one(0.3), one(0.2), one(0.1), one(0.25))
    for seconds, took in ends.items():
        assert seconds - 0.01 <= took < seconds + 2
    assert sorted(ends, key=ends.__getitem__) == [0.1, 0.2, 0.25, 0.3]


async def test_a_disarmed_deadline_never_fires_and_the_next_one_still_does() -> None:
    deadlines = Deadlines()
    assert await guarded(deadlines, 0.05, 0.0) == "done"  # the timer stays armed for this one...
    await asyncio.sleep(0.1)  # ...fires, finds it disarmed, and cancels nothing
    assert await guarded(deadlines, 0.05, 10.0) == "timeout"


async def test_another_cancellation_stays_a_cancellation() -> None:
    deadlines = Deadlines()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(guarded(deadlines, 30.0, never))
    await asyncio.sleep(0.01)
    task.cancel()  # a client's cancellation, long before the deadline
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_racing_the_deadline_is_not_taken_for_a_timeout() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    task = asyncio.ensure_future(guarded(deadlines, 0.0, never))
    await asyncio.sleep(0)  # the task armed its deadline (already due) in this turn; its timer runs in the next
    deadlines._fire(loop)  # the deadline cancels the task...
    task.cancel()  # ...and a client's cancellation comes in the same turn
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_nested_the_outer_deadline_is_the_outer_timeout() -> None:
    deadlines = Deadlines()

    async def outer() -> str:
        deadline = deadlines.arm(0.05)
        try:
            await guarded(deadlines, 30.0, 10.0)  # the inner sees a cancellation that is not its own
            return "inner returned"
        except asyncio.CancelledError:
            return "outer timeout" if deadlines.expired(deadline) else "cancelled"
        finally:
            deadlines.disarm(deadline)

    assert await outer() == "outer timeout"


async def test_disarmed_entries_do_not_pile_up() -> None:
    deadlines = Deadlines()
    for _ in range(1000):
        deadlines.disarm(deadlines.arm(30.0))
    assert len(deadlines._heap) <= 64 + 1 and deadlines._live == 0


async def test_disarm_takes_back_a_cancellation_nobody_asked_about() -> None:
    deadlines = Deadlines()
    deadline = deadlines.arm(0.01)
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        pass  # swallowed, never asked `expired`
    finally:
        deadlines.disarm(deadline)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
