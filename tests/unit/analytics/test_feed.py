"""The rollup feed: gate events become call facts, held and written in chunks, kept while the store refuses
them, and counted for a rotated key's successor."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from paygate.analytics.feed import RollupFeed
from paygate.core.keys import generate_api_key, hash_key, mask_parts
from paygate.core.records import KeyRecord
from paygate.events.hub import Event
from paygate.store.errors import StoreUnavailable
from paygate.store.rollups import RollupQuery, RollupRow
from paygate.store.sqlite import SQLiteStore

NOW = 1_790_000_000.0


@pytest.fixture
def store(memory_store: SQLiteStore) -> SQLiteStore:
    return memory_store


def key(store: SQLiteStore, namespace: str = "prod") -> KeyRecord:
    raw = generate_api_key()
    prefix, last4 = mask_parts(raw)
    record = KeyRecord(hash_key(raw), prefix, last4, "k", 100, NOW, namespace=namespace)
    store.create_key(record)
    return record


def allow(k: KeyRecord | None, tool: str = "echo", **data: Any) -> Event:
    body = {"tool": tool, "credits": 2, "durationMs": 12.5, **data}
    return Event("gate.allow", "x", body, NOW, key_hash=k.key_hash if k else None)


def deny(k: KeyRecord | None, reason: str = "rate_limited") -> Event:
    return Event(
        "gate.deny", "x", {"tool": "echo", "reason": reason, "durationMs": 0.5}, NOW, key_hash=k.key_hash if k else None
    )


def totals(store: SQLiteStore, **query: Any) -> list[tuple[Any, ...]]:
    rows = store.rollups.query(RollupQuery(**query))
    return sorted(((r.group, r.calls, r.allowed, r.denied, r.failed, r.credits, r.refunded) for r in rows), key=str)


def test_events_become_facts_with_the_keys_namespace(store: SQLiteStore) -> None:
    k = key(store, "prod")
    feed = RollupFeed(store, interval=0)
    feed.on_batch(
        [
            allow(k),
            allow(k, failed=True, refunded=2, credits=0),
            deny(k),
            deny(None, "invalid_api_key"),
            allow(k, shadow="shadow:rate_limited", credits=0),
            Event("key.created", "admin", {}),
        ]
    )
    assert totals(store, by=("key", "namespace", "reason")) == sorted(
        [
            ((None, "default", "invalid_api_key"), 1, 0, 1, 0, 0, 0),
            ((k.key_hash, "prod", ""), 2, 2, 0, 1, 2, 2),
            ((k.key_hash, "prod", "rate_limited"), 1, 0, 1, 0, 0, 0),
            ((k.key_hash, "prod", "shadow:rate_limited"), 1, 1, 0, 0, 0, 0),
        ],
        key=str,
    )


def test_held_until_flushed(store: SQLiteStore) -> None:
    k = key(store)

    async def run() -> None:
        feed = RollupFeed(store, interval=3600)
        feed.on_batch([allow(k), allow(k)])
        assert totals(store) == []  # held: the timer is an hour away
        feed.flush()
        assert totals(store) == [((), 2, 2, 0, 0, 4, 0)]

    asyncio.run(run())


def test_calls_are_held_as_sums(store: SQLiteStore) -> None:
    k = key(store)

    async def run() -> None:
        feed = RollupFeed(store, interval=3600)
        feed.on_batch([allow(k)] * 500 + [deny(k)] * 20)
        assert len(feed._held) == 2  # one row per (hour, key, tool, namespace, outcome), not per call
        feed.flush()

    asyncio.run(run())
    assert totals(store) == [((), 520, 500, 20, 0, 1000, 0)]


def test_a_full_batch_is_written_a_chunk_per_loop_pass(store: SQLiteStore) -> None:
    k = key(store)
    seen: list[int] = []
    record = store.rollups.record_sums

    def counting(rows: Sequence[RollupRow]) -> None:
        seen.append(len(rows))
        record(rows)

    store.rollups.record_sums = counting  # type: ignore[method-assign]
    tools = [f"t{i}" for i in range(10)]

    async def run() -> None:
        feed = RollupFeed(store, interval=3600, max_batch=10, chunk=4)
        feed.on_batch([allow(k, tool) for tool in tools[:9]])
        assert seen == []
        feed.on_batch([allow(k, tools[9])])  # the tenth: written now, four rows at a time, a chunk per pass
        assert seen == [4]
        for _ in range(2):  # a chunk per pass of the loop
            await asyncio.sleep(0)
        assert seen == [4, 4, 2] and feed._pacing is None

    asyncio.run(run())
    assert totals(store) == [((), 10, 10, 0, 0, 20, 0)]


def test_kept_while_the_store_refuses_them(store: SQLiteStore, caplog: pytest.LogCaptureFixture) -> None:
    k = key(store)
    record = store.rollups.record_sums
    refusing = [True]

    def flaky(rows: Sequence[RollupRow]) -> None:
        if refusing[0]:
            raise StoreUnavailable("redis unreachable")
        record(rows)

    store.rollups.record_sums = flaky  # type: ignore[method-assign]
    feed = RollupFeed(store, interval=0)
    feed.on_batch([allow(k)])
    feed.on_batch([deny(k)])
    assert totals(store) == []
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1 and "redis unreachable" in refused[0].getMessage()  # said once, not per try
    refusing[0] = False
    feed.on_batch([allow(k)])
    assert totals(store) == [((), 3, 2, 1, 0, 4, 0)]


def test_a_call_written_after_its_key_was_rotated_counts_for_the_successor(store: SQLiteStore) -> None:
    old = key(store)
    feed = RollupFeed(store, interval=0)
    feed.on_batch([allow(old)])
    raw = generate_api_key()
    prefix, last4 = mask_parts(raw)
    new = KeyRecord(hash_key(raw), prefix, last4, old.name, 0, NOW, namespace=old.namespace)
    store.rekey(old.key_hash, new)
    feed.on_batch([allow(old)])  # answered before the rotation, written after it
    assert totals(store, by=("key",)) == [((new.key_hash,), 2, 2, 0, 0, 4, 0)]
