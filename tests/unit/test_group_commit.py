"""SQLiteStore.charge_deferred: decided at once in memory, durable in the charge journal before it
returns, written to SQLite in batches (store/group_commit.py, store/charge_journal.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from paygate.core.records import KeyRecord, UsageEvent
from paygate.store import group_commit
from paygate.store.base import ChargeNotRecorded
from paygate.store.charge_journal import SUFFIX
from paygate.store.errors import StateFileError
from paygate.store.sqlite import SQLiteStore
from tests.disk_full import disk_full


def event(n: int) -> UsageEvent:
    return UsageEvent(time.time(), "h", "pg_…wxyz", "k", "echo", 1, True, request_id=f"req_{n}")


def stored_credits(s: SQLiteStore) -> int:
    return int(s.db.execute("SELECT credits FROM keys WHERE key_hash = 'h'").fetchone()[0])


def journal_lines(s: SQLiteStore) -> list[bytes]:
    """The journal's commit units (its first line, naming the database, left out)."""
    return Path(s.path + SUFFIX).read_bytes().splitlines(keepends=True)[1:]


def set_journal(s: SQLiteStore, units: bytes) -> None:
    path = Path(s.path + SUFFIX)
    header = path.read_bytes().splitlines(keepends=True)[0]
    path.write_bytes(header + units)


def copy_journal(source: str, dest: str) -> None:
    Path(dest + SUFFIX).write_bytes(Path(source + SUFFIX).read_bytes())


def crash(s: SQLiteStore) -> None:
    """What a `kill -9` leaves: the files as they are, nothing flushed."""
    s.db.close()
    s._db = None
    assert s._journal is not None
    s._journal.close()
    s._journal = None
    s._release()


def reopened(path: str) -> SQLiteStore:
    s = SQLiteStore(path)
    s.open()
    return s


async def test_charges_are_journalled_at_once_and_written_to_sqlite_in_one_batch(store: SQLiteStore) -> None:
    results = [store.charge_deferred("h", 1, event(n)) for n in range(12)]
    assert [r.ok for r, _ in results] == [True] * 10 + [False] * 2  # decided at once, in order
    assert results[0][1] is None and len(journal_lines(store)) == 1  # the pass's first: written at once
    waiting = [fut for _, fut in results[1:10]]
    assert all(fut is not None and not fut.done() for fut in waiting)  # the rest: written at the pass's end
    assert results[10][1] is None and results[11][1] is None  # refused: nothing to wait for
    assert store.get_key("h").credits == 0  # type: ignore[union-attr]
    await asyncio.gather(*waiting)  # type: ignore[arg-type]
    assert len(journal_lines(store)) == 10 and stored_credits(store) == 10  # in the journal, not in SQLite yet
    deadline = time.monotonic() + 5
    while stored_credits(store) != 0:  # the batch goes to SQLite on its own, APPLY_SECONDS later
        assert time.monotonic() < deadline
        await asyncio.sleep(group_commit.APPLY_SECONDS)
    assert journal_lines(store) == []  # emptied once SQLite has them
    assert [e.balance_after for e in store.ledger("h") if e.kind == "charge"] == list(range(9, -1, -1))
    assert [e.request_id for e in store.query_usage()] == [f"req_{n}" for n in range(10)]
    row = store.db.execute("SELECT total_spent, total_calls FROM keys WHERE key_hash = 'h'").fetchone()
    assert tuple(row) == (10, 10)


async def test_reads_and_other_writes_write_pending_charges_first(store: SQLiteStore) -> None:
    store.charge_deferred("h", 4, event(1))
    assert [u.request_id for u in store.query_usage()] == ["req_1"]  # a read sees the call at once
    store.charge_deferred("h", 1, event(2))
    assert store.topup("h", 5, "more").balance == 10  # 10 - 4 - 1 + 5: the charges went first
    assert [(e.kind, e.balance_after) for e in store.ledger("h")][-3:] == [("charge", 6), ("charge", 5), ("topup", 10)]
    assert stored_credits(store) == 10 and journal_lines(store) == []


async def test_a_journal_that_cannot_be_written_undoes_the_charge_and_tells_the_caller(store: SQLiteStore) -> None:
    assert store._journal is not None
    with disk_full(store._journal):
        result, fut = store.charge_deferred("h", 3, event(1))  # the pass's first: written at once
        many, many_fut = store.charge_many_deferred("h", [(2, event(2)), (2, event(3))])  # at the pass's end
        assert result.ok and fut is not None
        with pytest.raises(ChargeNotRecorded, match="No space left"):
            await fut
        assert many_fut is not None
        with pytest.raises(ChargeNotRecorded, match="No space left"):
            await many_fut
    record = store.get_key("h")
    assert record is not None and (record.credits, record.total_spent, record.total_calls) == (10, 0, 0)
    fut = many_fut
    assert many.ok and fut is not None and fut.exception() is not None
    assert store.get_key("h").credits == 10  # type: ignore[union-attr]


async def test_sqlite_refusing_a_batch_keeps_the_answered_charges_and_retries(store: SQLiteStore) -> None:
    store.db.execute("CREATE TRIGGER full BEFORE INSERT ON usage BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    store.charge_deferred("h", 3, event(1))
    store.flush()  # refused: the charge stays in memory and in the journal
    assert store.get_key("h").credits == 7  # type: ignore[union-attr]
    assert stored_credits(store) == 10 and len(journal_lines(store)) == 1
    store.db.execute("DROP TRIGGER full")
    store.flush()
    assert stored_credits(store) == 7 and journal_lines(store) == []


async def test_a_crash_loses_no_journalled_charge(store: SQLiteStore) -> None:
    store.charge_deferred("h", 3, event(1))
    _, grouped = store.charge_many_deferred("h", [(2, event(2)), (1, event(3))])
    assert grouped is not None
    await grouped  # acknowledged: the caller may now answer
    crash(store)
    after = reopened(store.path)
    try:
        record = after.get_key("h")
        assert record is not None and (record.credits, record.total_spent, record.total_calls) == (4, 6, 3)
        assert [e.balance_after for e in after.ledger("h") if e.kind == "charge"] == [7, 5, 4]
        assert [u.request_id for u in after.query_usage()] == ["req_1", "req_2", "req_3"]
        assert journal_lines(after) == []
    finally:
        after.close()


async def test_a_crash_after_the_batch_committed_replays_nothing_twice(store: SQLiteStore) -> None:
    store.charge_deferred("h", 3, event(1))
    lines = journal_lines(store)
    store.flush()  # in SQLite (journal_seq 1); the journal emptied ...
    set_journal(store, b"".join(lines))  # ... or not: the crash came before the truncation
    _, second = store.charge_deferred("h", 2, event(2))
    if second is not None:
        await second
    crash(store)
    after = reopened(store.path)
    try:
        assert after.get_key("h").credits == 5  # type: ignore[union-attr]
        assert [u.request_id for u in after.query_usage()] == ["req_1", "req_2"]
    finally:
        after.close()


async def test_a_grouped_charge_a_crash_took_before_its_write_was_never_acknowledged(store: SQLiteStore) -> None:
    _, now = store.charge_deferred("h", 3, event(1))
    _, later = store.charge_deferred("h", 2, event(2))
    assert now is None and later is not None and not later.done()  # its caller is still waiting: no answer sent
    crash(store)  # before the pass ended
    after = reopened(store.path)
    try:
        assert after.get_key("h").credits == 7  # type: ignore[union-attr]  # the acknowledged one only
        assert [u.request_id for u in after.query_usage()] == ["req_1"]
    finally:
        after.close()


async def test_a_torn_last_line_is_ignored_and_the_rest_applied(store: SQLiteStore) -> None:
    store.charge_deferred("h", 3, event(1))
    _, second = store.charge_deferred("h", 2, event(2))
    await second  # type: ignore[misc]
    crash(store)
    whole = b"".join(journal_lines(store))
    set_journal(store, whole[: len(whole) - 7])  # the power went mid-write
    after = reopened(store.path)
    try:
        assert after.get_key("h").credits == 7  # type: ignore[union-attr]
        assert [u.request_id for u in after.query_usage()] == ["req_1"]
    finally:
        after.close()


async def test_with_full_sync_the_charges_of_one_pass_are_synced_together(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "state.db", synchronous="FULL")
    s.open()
    try:
        s.create_key(KeyRecord("h", "pg_abcd", "wxyz", "k", 10, time.time()))
        futures = [s.charge_deferred("h", 1, event(n))[1] for n in range(3)]
        assert all(f is not None and not f.done() for f in futures)  # not acted on before the fdatasync
        await asyncio.gather(*futures)  # type: ignore[arg-type]
        assert len(journal_lines(s)) == 3 and s.get_key("h").credits == 7  # type: ignore[union-attr]
    finally:
        s.close()
    after = reopened(str(tmp_path / "state.db"))
    try:
        assert after.get_key("h").credits == 7  # type: ignore[union-attr]
    finally:
        after.close()


def test_outside_an_event_loop_it_is_a_plain_charge(store: SQLiteStore) -> None:
    result, fut = store.charge_deferred("h", 2, event(1))
    assert result.ok and fut is None and stored_credits(store) == 8


async def test_a_journal_of_another_database_is_refused(store: SQLiteStore, tmp_path: Path) -> None:
    store.charge_deferred("h", 3, event(1))
    crash(store)
    other = SQLiteStore(tmp_path / "other.db")
    other.open()
    other.close()
    copy_journal(store.path, other.path)  # left beside another state file
    with pytest.raises(StateFileError, match="not the charge journal of this state file"):
        reopened(other.path)
    after = reopened(store.path)  # its own database still takes it
    try:
        assert after.get_key("h").credits == 7  # type: ignore[union-attr]
    finally:
        after.close()


def test_an_empty_journal_left_by_a_deleted_database_is_taken_over(tmp_path: Path) -> None:
    first = reopened(str(tmp_path / "state.db"))
    first.close()  # a clean stop: the journal holds its header only
    (tmp_path / "state.db").unlink()  # the operator starts afresh, the journal stays behind
    fresh = reopened(str(tmp_path / "state.db"))
    try:
        fresh.create_key(KeyRecord("h", "pg_abcd", "wxyz", "k", 10, time.time()))
        assert fresh.charge("h", 3, event(1)).ok
    finally:
        fresh.close()
