"""SQLiteStore.charge_many / charge_many_deferred: several calls on one key, all charged or none."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from paygate.core.records import UsageEvent
from paygate.store.base import ChargeNotRecorded
from paygate.store.charge_journal import SUFFIX
from paygate.store.sqlite import SQLiteStore
from tests.disk_full import disk_full


def calls(*amounts: int) -> list[tuple[int, UsageEvent]]:
    return [
        (a, UsageEvent(time.time(), "h", "pg_…wxyz", "k", f"tool{i}", a, True, request_id="req"))
        for i, a in enumerate(amounts)
    ]


def stored(s: SQLiteStore) -> tuple[int, int, int]:
    row = s.db.execute("SELECT credits, total_spent, total_calls FROM keys WHERE key_hash = 'h'").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def test_every_call_is_charged_with_its_own_ledger_entry_and_usage_row(store: SQLiteStore) -> None:
    result = store.charge_many("h", calls(5, 0, 3))
    assert result.ok and result.balance == 2 and stored(store) == (2, 8, 3)
    charges = [(e.delta, e.balance_after, e.memo) for e in store.ledger("h") if e.kind == "charge"]
    assert charges == [(-5, 5, "tool0"), (-3, 2, "tool2")]  # a free call moves no credits
    assert [(e.tool, e.credits) for e in store.query_usage()] == [("tool0", 5), ("tool1", 0), ("tool2", 3)]


def test_a_batch_the_balance_does_not_cover_charges_nothing(store: SQLiteStore) -> None:
    result = store.charge_many("h", calls(5, 6))
    assert not result.ok and result.balance == 10
    assert stored(store) == (10, 0, 0) and store.query_usage() == []
    assert [e.kind for e in store.ledger("h")] == ["create"]


def test_an_unknown_key_is_refused(store: SQLiteStore) -> None:
    assert not store.charge_many("nope", calls(1)).ok


def journal_units(s: SQLiteStore) -> int:
    return len(Path(s.path + SUFFIX).read_bytes().splitlines()) - 1  # its first line names the database


async def test_deferred_it_is_decided_at_once_journalled_whole_and_written_later(store: SQLiteStore) -> None:
    result, done = store.charge_many_deferred("h", calls(4, 4))
    refused, nothing = store.charge_many_deferred("h", calls(1, 2))  # 2 left: the second batch cannot have 3
    assert result.ok and result.balance == 2 and not refused.ok and nothing is None
    assert done is None  # durable already: the batch is one line of the charge journal
    assert store.get_key("h").credits == 2  # type: ignore[union-attr]
    assert stored(store) == (10, 0, 0)  # not in SQLite yet
    assert journal_units(store) == 1
    store.flush()
    assert stored(store) == (2, 8, 2)
    assert [e.balance_after for e in store.ledger("h") if e.kind == "charge"] == [6, 2]


async def test_deferred_a_journal_that_cannot_be_written_undoes_the_whole_batch(store: SQLiteStore) -> None:
    assert store._journal is not None
    with disk_full(store._journal):
        _, done = store.charge_many_deferred("h", calls(3, 3, 3))
    assert done is not None
    with pytest.raises(ChargeNotRecorded, match="No space left"):
        await done
    record = store.get_key("h")
    assert record is not None and (record.credits, record.total_spent, record.total_calls) == (10, 0, 0)
    assert stored(store) == (10, 0, 0)


async def test_deferred_it_is_written_together_with_single_charges(store: SQLiteStore) -> None:
    store.charge_deferred("h", 1, calls(1)[0][1])
    store.charge_many_deferred("h", calls(2, 2))
    store.flush()
    assert stored(store) == (5, 5, 3)
