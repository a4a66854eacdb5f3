"""The admin event stream's fan-out: filters, bounded queues, the stream limit, shutdown hooks."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from types import FrameType

import orjson
import pytest

from paygate.events.hub import Event, EventHub
from paygate.events.routes import audit_frame, frame
from paygate.events.stream import EventStreamHub, HubClosed, TooManyStreams
from paygate.exit_signals import chain_exit_signals


def queued(client_queue: asyncio.Queue[Event | None]) -> list[str]:
    out = []
    while not client_queue.empty():
        item = client_queue.get_nowait()
        out.append("END" if item is None else item.type)
    return out


async def test_every_client_gets_the_events_it_asked_for_at_once() -> None:
    bus, hub = EventHub(), EventStreamHub()
    bus.subscribe(hub.publish)
    everything, keys_only = hub.open(), hub.open(("key.created", "key.revoked"))
    bus.publish("key.created", "admin", name="a")
    bus.publish("gate.allow", "pg_abc…1234", tool="echo")
    bus.publish("key.revoked", "admin")
    assert queued(everything.queue) == ["key.created", "gate.allow", "key.revoked"]  # inline: no loop pass needed
    assert queued(keys_only.queue) == ["key.created", "key.revoked"]


async def test_a_client_too_far_behind_is_ended_without_blocking_the_publisher() -> None:
    hub = EventStreamHub(queue_size=3)
    slow, fast = hub.open(), hub.open()
    for i in range(3):
        hub.publish(Event("a.b", "admin", id=i))
        fast.queue.get_nowait()
    hub.publish(Event("a.b", "admin", id=4))  # the fourth does not fit in slow's queue
    assert slow.ended and len(hub) == 1 and hub.dropped == 1
    assert slow.queue.qsize() == 3  # what it had stays; the reader stops at `ended`
    assert not fast.ended and queued(fast.queue) == ["a.b"]


async def test_at_most_max_streams_are_open_and_closing_one_frees_a_slot() -> None:
    hub = EventStreamHub(max_streams=2)
    first, _ = hub.open(), hub.open()
    with pytest.raises(TooManyStreams):
        hub.open()
    hub.close(first)
    assert first.ended and len(hub) == 1
    hub.open()


async def test_closing_all_wakes_a_reader_waiting_on_an_empty_queue() -> None:
    hub = EventStreamHub()
    client = hub.open()
    reader = asyncio.ensure_future(client.queue.get())
    await asyncio.sleep(0)
    await hub.stop()
    assert await asyncio.wait_for(reader, 5) is None and client.ended and len(hub) == 0
    hub.publish(Event("a.b", "admin"))  # nobody left: nothing queued anywhere
    assert client.queue.empty()
    with pytest.raises(HubClosed):  # shutting down: no new streams
        hub.open()


def test_frames_are_one_event_and_one_json_data_line() -> None:
    assert frame("connected", {"filters": "all"}) == b'event: connected\ndata: {"filters":"all"}\n\n'
    out = audit_frame(Event("key.created", "admin", {"name": "a\nb", "keyMasked": "pg_abc…1234"}, 0.0, 42))
    head, data, end1, end2 = out.split(b"\n")
    assert head == b"event: audit" and end1 == end2 == b""
    assert orjson.loads(data.removeprefix(b"data: ")) == {
        "id": 42,
        "timestamp": "1970-01-01T00:00:00.000Z",
        "type": "key.created",
        "actor": "admin",
        "message": "Key created: a\nb",
        "metadata": {"name": "a\nb", "keyMasked": "pg_abc…1234"},
    }


@pytest.fixture
def exit_handlers() -> Iterator[list[int]]:
    """SIGTERM/SIGINT handled by a recorder (as uvicorn would), restored afterwards."""
    seen: list[int] = []
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def record(signum: int, _: FrameType | None) -> None:
        seen.append(signum)

    for sig in saved:
        signal.signal(sig, record)
    try:
        yield seen
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


async def test_an_exit_signal_runs_the_action_then_the_handler_it_had(exit_handlers: list[int]) -> None:
    ran = asyncio.Event()
    before = signal.getsignal(signal.SIGTERM)
    start, stop = chain_exit_signals([ran.set])
    await start()
    signal.raise_signal(signal.SIGTERM)
    await asyncio.wait_for(ran.wait(), 5)
    assert exit_handlers == [signal.SIGTERM]
    await stop()
    assert signal.getsignal(signal.SIGTERM) is before
