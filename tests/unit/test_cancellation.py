"""InFlight: a client cancels only its own forwarded requests; the gateway's own cancellation is not the client's."""

from __future__ import annotations

import asyncio

import pytest

from paygate.mcp.cancellation import CancelledByClient, InFlight


async def test_the_client_cancels_its_own_request_by_session_and_id() -> None:
    in_flight = InFlight()
    started = asyncio.Event()

    async def work() -> str:
        started.set()
        await asyncio.sleep(30)
        return "done"

    running = asyncio.ensure_future(in_flight.run("s1", 7, work()))
    await started.wait()
    assert len(in_flight) == 1
    assert not in_flight.cancel("s2", 7) and not in_flight.cancel("s1", 8) and not in_flight.cancel("s1", True)
    assert in_flight.cancel("s1", 7)
    with pytest.raises(CancelledByClient):
        await running
    assert len(in_flight) == 0 and not in_flight.cancel("s1", 7)


async def test_the_gateway_cancelling_the_caller_is_not_a_client_cancellation_and_ends_the_work() -> None:
    in_flight = InFlight()
    started, ended = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            ended.set()

    caller = asyncio.ensure_future(in_flight.run("s1", "a", work()))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.wait_for(ended.wait(), 5)
    assert len(in_flight) == 0


async def test_a_duplicate_id_in_a_session_is_served_but_not_cancellable() -> None:
    in_flight = InFlight()
    gate = asyncio.Event()

    async def work(n: int) -> int:
        await gate.wait()
        return n

    first = asyncio.ensure_future(in_flight.run("s1", 1, work(1)))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(in_flight.run("s1", 1, work(2)))
    await asyncio.sleep(0)
    assert len(in_flight) == 1
    gate.set()
    assert (await first, await second) == (1, 2)
    assert len(in_flight) == 0


async def test_the_callers_task_goes_on_after_a_client_cancellation_and_is_not_left_cancelling() -> None:
    """The request's own task is the one cancelled (no task per call): once CancelledByClient is raised,
    the task is not cancelling any more, so what it does next (settle, answer) runs normally."""
    in_flight = InFlight()
    started = asyncio.Event()

    async def caller() -> str:
        async def work() -> None:
            started.set()
            await asyncio.sleep(30)

        try:
            await in_flight.run("s1", 1, work())
        except CancelledByClient:
            task = asyncio.current_task()
            assert task is not None and task.cancelling() == 0
            await asyncio.sleep(0)  # not cancelled again at its next await
            return "settled"
        return "not cancelled"

    running = asyncio.ensure_future(caller())
    await started.wait()
    assert in_flight.cancel("s1", 1) and not in_flight.cancel("s1", 1)  # once
    assert await running == "settled"


async def test_a_client_and_the_gateway_cancelling_together_is_the_gateways() -> None:
    in_flight = InFlight()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(30)

    caller = asyncio.ensure_future(in_flight.run("s1", 2, work()))
    await started.wait()
    assert in_flight.cancel("s1", 2)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
