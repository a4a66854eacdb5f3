"""The event bus: inline subscribers at once, deferred ones after the publisher returns, one id each."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from paygate.events.hub import DRAIN_CHUNK, MAX_PENDING, Event, EventHub


def test_without_a_loop_deferred_subscribers_get_each_event_at_once() -> None:
    hub = EventHub()
    seen: list[str] = []
    hub.subscribe_batch(lambda batch: seen.extend(e.type for e in batch))
    hub.publish("key.created", "admin", name="a")
    assert seen == ["key.created"] and hub.pending == 0


async def test_in_a_loop_deferred_subscribers_run_after_the_publisher_returns_in_one_batch() -> None:
    hub = EventHub()
    batches: list[list[str]] = []
    delivered = asyncio.get_running_loop().create_future()

    def subscriber(batch: Sequence[Event]) -> None:
        batches.append([e.type for e in batch])
        delivered.set_result(None)

    hub.subscribe_batch(subscriber)
    hub.publish("a.one", "admin")
    hub.publish("a.two", "admin")
    assert batches == [] and hub.pending == 2  # nothing ran inside the publishing step
    await asyncio.wait_for(delivered, 5)
    assert batches == [["a.one", "a.two"]] and hub.pending == 0


async def test_flush_delivers_pending_events_now_and_only_once() -> None:
    hub = EventHub()
    seen: list[str] = []
    hub.subscribe_batch(lambda batch: seen.extend(e.type for e in batch))
    hub.publish("a.one", "admin")
    hub.flush()
    assert seen == ["a.one"]
    await asyncio.sleep(0)
    assert seen == ["a.one"]


async def test_inline_subscribers_see_the_event_inside_publish() -> None:
    hub = EventHub()
    seen: list[Event] = []
    hub.subscribe(seen.append)
    hub.publish("key.topup", "admin", creditsAdded=5)
    assert [(e.type, e.data) for e in seen] == [("key.topup", {"creditsAdded": 5})]


def test_ids_are_unique_increasing_and_start_past_the_seed() -> None:
    hub = EventHub()
    hub.seed(41)
    first = hub.emit("a", "admin", {})
    second = hub.emit("b", "admin", {})
    assert (first.id, second.id) == (41, 42)
    hub.seed(10)  # never goes back
    assert hub.emit("c", "admin", {}).id == 43


def test_a_broken_subscriber_does_not_stop_the_others_or_the_publisher() -> None:
    hub = EventHub()
    seen: list[str] = []

    def broken(_: Sequence[Event]) -> None:
        raise RuntimeError("boom")

    hub.subscribe(lambda e: (_ for _ in ()).throw(RuntimeError("inline boom")))
    hub.subscribe_batch(broken)
    hub.subscribe_batch(lambda batch: seen.extend(e.type for e in batch))
    hub.publish("a.one", "admin")
    assert seen == ["a.one"]


async def test_events_published_by_a_deferred_subscriber_are_delivered_in_the_same_flush() -> None:
    hub = EventHub()
    seen: list[str] = []

    def react(batch: Sequence[Event]) -> None:
        seen.extend(e.type for e in batch)
        if any(e.type == "gate.allow" for e in batch):
            hub.publish("alert.fired", "system")

    hub.subscribe_batch(react)
    hub.emit("gate.allow", "pg_abc…1234", {"tool": "t"})
    hub.flush()
    assert seen == ["gate.allow", "alert.fired"] and hub.pending == 0


async def test_a_backlog_past_the_bound_is_delivered_synchronously() -> None:
    hub = EventHub()
    delivered = [0]
    hub.subscribe_batch(lambda batch: delivered.__setitem__(0, delivered[0] + len(batch)))
    for _ in range(MAX_PENDING + 1):
        hub.emit("gate.allow", "k", {})
    assert hub.pending < MAX_PENDING and delivered[0] >= MAX_PENDING


def test_public_form_never_carries_the_key_hash() -> None:
    event = Event("gate.allow", "pg_abc…1234", {"tool": "t"}, 1.0, 7, "req_1", key_hash="secret-hash")
    public = event.public()
    assert "secret-hash" not in repr(public) and public["requestId"] == "req_1" and public["id"] == 7


@pytest.mark.parametrize("type_", ["gate.allow", "gate.deny"])
def test_per_call_events_are_not_logged_one_line_each(type_: str, caplog: pytest.LogCaptureFixture) -> None:
    hub = EventHub()
    with caplog.at_level("INFO", logger="paygate.events"):
        hub.publish(type_, "k", tool="t")
        hub.publish("key.created", "admin", name="n")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "key.created" in messages[0]


async def test_a_large_backlog_is_delivered_in_chunks_one_pass_of_the_loop_each_in_order() -> None:
    hub = EventHub()
    batches: list[list[int]] = []
    done = asyncio.get_running_loop().create_future()

    def subscriber(batch: Sequence[Event]) -> None:
        batches.append([e.id for e in batch])
        if sum(len(b) for b in batches) == 150:
            done.set_result(None)

    hub.subscribe_batch(subscriber)
    ids = [hub.emit("gate.allow", "k", {}).id for _ in range(150)]
    await asyncio.wait_for(done, 5)
    assert [len(b) for b in batches] == [DRAIN_CHUNK, DRAIN_CHUNK, 150 - 2 * DRAIN_CHUNK]
    assert [i for b in batches for i in b] == ids


def test_a_hub_with_a_catalog_refuses_an_unknown_type_and_publishes_nothing() -> None:
    hub = EventHub(known={"key.created": "a key was created"})
    seen: list[str] = []
    hub.subscribe(lambda e: seen.append(e.type))
    hub.publish("key.created", "admin")
    with pytest.raises(ValueError, match=r"unknown event type 'key\.craeted'"):
        hub.publish("key.craeted", "admin")
    assert seen == ["key.created"] and hub.published == 1
