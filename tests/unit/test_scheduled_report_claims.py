"""Scheduled reports' claims (webhooks/scheduled.py): of the instances sharing a store, exactly one sends a
period; a period is sent once across restarts; a failed one is retried by one instance only. On SQLite
(one store, services started again) and on a real Redis (two stores: two fleet members)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from paygate.config import Settings
from paygate.events.hub import EventHub
from paygate.store.base import Store
from paygate.store.redis_backend.store import RedisStore
from paygate.store.sqlite import MEMORY, SQLiteStore
from paygate.webhooks import scheduled
from paygate.webhooks.report_periods import next_start, period_start
from paygate.webhooks.scheduled import KIND, RUNS, ScheduledReports
from paygate.webhooks.sender import Outcome

DAY = 86_400.0
T0 = 1_796_601_600.0 + 3600  # 2026-12-07 01:00 UTC


class Counting(ScheduledReports):
    def __init__(self, store: Store, sent: list[tuple[str, float]], status: Callable[[], int]) -> None:
        super().__init__(store, EventHub(), Settings.model_validate({"serverCommand": "x"}), lambda n, p: {})
        self.sent = sent
        self.status = status

    async def send(self, doc: dict[str, Any], start: float, end: float, run_id: str) -> Outcome:
        self.sent.append((doc["id"], start))
        code = self.status()
        return Outcome(code, None if code == 200 else f"HTTP {code}", 1.0)


def schedule(store: Store) -> None:
    doc = {"id": "rpt_1", "name": "n", "type": "usage", "frequency": "daily", "filters": {}, "enabled": True}
    store.doc_put(KIND, "rpt_1", {**doc, "since": T0, "createdAt": "x", "timeoutSeconds": 5})


async def ticks(services: list[ScheduledReports], now: float) -> None:
    for s in services:
        s.tick(now)
    for s in services:
        await s.stop()


def test_one_store_one_send_per_period_across_restarts() -> None:
    store = SQLiteStore(MEMORY)
    store.open()
    schedule(store)
    sent: list[tuple[str, float]] = []
    day1 = period_start("daily", T0)
    asyncio.run(ticks([Counting(store, sent, lambda: 200)], T0 + DAY))
    asyncio.run(ticks([Counting(store, sent, lambda: 200)], T0 + DAY + 5))  # "restarted"
    assert sent == [("rpt_1", day1)]
    asyncio.run(ticks([Counting(store, sent, lambda: 200)], T0 + 3 * DAY))  # two more ended: caught up
    assert [s for _, s in sent] == [day1, next_start("daily", day1), next_start("daily", next_start("daily", day1))]
    assert all(r["status"] == "delivered" for r in store.doc_list(RUNS))


@pytest.mark.e2e
def test_two_fleet_members_send_a_period_once_and_retry_it_once(redis_url: str, tmp_path: Any) -> None:
    first, second = RedisStore(redis_url, prefix=tmp_path.name), RedisStore(redis_url, prefix=tmp_path.name)
    first.open()
    second.open()
    try:
        schedule(first)
        sent: list[tuple[str, float]] = []
        codes = iter([500, 200])

        async def run() -> None:
            a, b = Counting(first, sent, lambda: next(codes)), Counting(second, sent, lambda: next(codes))
            await ticks([a, b], T0 + DAY)  # both see it due: one claims it (and fails)
            assert len(sent) == 1
            await ticks([a, b], T0 + DAY + 3600)  # both see it failed: one retries it
            assert len(sent) == 2
            await ticks([b, a], T0 + DAY + 7200)  # delivered: nobody sends it again
            assert len(sent) == 2

        asyncio.run(run())
        runs = first.doc_list(RUNS)
        assert len(runs) == 1 and runs[0]["status"] == "delivered" and runs[0]["attempts"] == 2
    finally:
        first.close()
        second.close()


def test_a_peers_stale_view_of_a_claim_cannot_win_a_retry_of_a_delivered_period() -> None:
    """A fleet member a write behind still sees the claim `pending` at attempt 1 after the period was
    delivered at attempt 1: its retry's compare-and-set must fail (the attempts alone are equal)."""
    store = SQLiteStore(MEMORY)
    store.open()
    schedule(store)
    sent: list[tuple[str, float]] = []
    asyncio.run(ticks([Counting(store, sent, lambda: 200)], T0 + DAY))
    [run] = store.doc_list(RUNS)
    assert run["status"] == "delivered" and run["attempts"] == 1
    stale = {**run, "status": "pending", "state": "pending:1"}
    assert not store.doc_put_if(RUNS, run["id"], {**stale, "attempts": 2}, "state", scheduled._state(stale))
    assert store.doc_list(RUNS)[0]["status"] == "delivered" and len(sent) == 1
