"""Charges on the hot path: decided in memory, durable in the charge journal, applied to SQLite in batches.

A mixin of `SQLiteStore` (kept apart to keep that module small). `charge_deferred` (and
`charge_many_deferred`, store/batch_charges.py) applies the charge to the in-memory record at once
(no await in between, so concurrent calls cannot overspend) and hands it to `_commit`:

- With a state file, the charge is appended to the charge journal (store/charge_journal.py): one
  `write()`, as durable as the SQLite commit it replaces. The first charge of an event-loop pass is
  written before `_commit` returns and nothing is awaited, so a lone call goes on to the backend at
  once. The pass's other charges are written together at its end, and their callers await the
  returned future: measured, holding concurrent calls back to one burst per pass cost each call
  ~40 µs less CPU at 64 connections (their backend writes and answers then come in bursts too)
  where a lone call would lose ~20 µs waiting (bench/README.md, issue 13). With `sqliteSync: FULL`
  every charge is grouped, and each group `fdatasync`ed before its callers go on.
- Every APPLY_SECONDS (or at APPLY_MAX pending charges) `flush` writes the journalled charges to
  SQLite in one transaction — balances, ledger entries, usage rows and the journal's sequence
  number — and empties the journal. A batch of 64 costs ~15 µs a charge against ~130 µs for a
  transaction of one. Every other write, and every read of usage or the ledger, flushes first, so
  SQLite is never behind what the caller can observe and no write interleaves with pending charges.
- If the journal write fails (a full disk), the charge is undone in memory and the caller gets a
  failed future (`ChargeNotRecorded`): the call is answered with an error and nothing is spent.
  If applying a batch to SQLite fails, the charges stay pending (they are in the journal, and
  already answered) and the apply is retried; new charges are refused once APPLY_BACKLOG are waiting.
- At start, journalled charges SQLite does not have yet (a crash) are applied before anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from paygate.core.records import ChargeLimits, ChargeResult, KeyRecord, UsageEvent
from paygate.store import charge_journal
from paygate.store.charge_journal import ChargeJournal, Entry, ForeignJournal
from paygate.store.errors import ChargeNotRecorded, StateFileError
from paygate.store.rows import CHARGE_SQL, LEDGER_SQL, USAGE_SQL, usage_row

log = logging.getLogger("paygate.store")

APPLY_SECONDS = 0.02  # how long charges wait in the journal before a batch goes to SQLite
APPLY_MAX = 256  # a batch this big goes at once (a longer one would hold the event loop)
APPLY_RETRY_SECONDS = 1.0  # after SQLite refused a batch
APPLY_BACKLOG = 20_000  # charges waiting on a failing SQLite before new ones are refused


@dataclass(slots=True)
class PendingCharge:
    """A charge applied in memory (and journalled), waiting to be written to SQLite."""

    record: KeyRecord
    amount: int
    balance: int
    event: UsageEvent


class _StoreCore(Protocol):
    _keys: dict[str, KeyRecord]
    _journal: ChargeJournal | None

    @property
    def db(self) -> sqlite3.Connection: ...
    def get_meta(self, name: str) -> str | None: ...
    def set_meta(self, name: str, value: str) -> None: ...


class GroupCommit:
    _keys: dict[str, KeyRecord]
    _journal: ChargeJournal | None  # None for an in-memory store: nothing outlives the process anyway
    _journal_seq = 0  # the last sequence number written to the journal
    _batch: list[PendingCharge]  # journalled, not yet in SQLite
    _unsynced: list[tuple[list[PendingCharge], asyncio.Future[None]]]  # grouped: written at this pass's end
    _apply_handle: asyncio.Handle | None = None
    _sync_handle: asyncio.Handle | None = None
    _pass_busy = False  # a charge of this event-loop pass was written already

    def _init_group_commit(self) -> None:
        self._batch = []
        self._unsynced = []

    def charge_deferred(
        self, key_hash: str, amount: int, event: UsageEvent, limits: ChargeLimits | None = None
    ) -> tuple[ChargeResult, asyncio.Future[None] | None]:
        """One call's charge: `charge_many_deferred` of one."""
        return self.charge_many_deferred(key_hash, [(amount, event)])

    def charge_many_deferred(
        self: Any, key_hash: str, charges: Sequence[tuple[int, UsageEvent]], limits: ChargeLimits | None = None
    ) -> tuple[ChargeResult, asyncio.Future[None] | None]:
        """Every charge of `charges` if the balance covers their sum, else none: applied in memory at once,
        journalled as one unit (see the module docstring). Await the future, when not None, before acting
        on them. Outside an event loop this is plain `charge_many` (store/batch_charges.py). `limits` are
        not checked again: in one process, the gate's check just before was exact."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self.charge_many(key_hash, charges), None
        record = self._keys.get(key_hash)
        if record is None:
            return ChargeResult(False, 0), None
        if record.credits < sum(amount for amount, _ in charges):
            return ChargeResult(False, record.credits), None
        if not charges:
            return ChargeResult(True, record.credits), None
        pending = []
        for amount, event in charges:
            record.credits -= amount
            record.total_spent += amount
            record.total_calls += 1
            record.last_used_at = event.timestamp
            pending.append(PendingCharge(record, amount, record.credits, event))
        return ChargeResult(True, record.credits), self._commit(loop, pending)

    def _commit(self, loop: asyncio.AbstractEventLoop, pending: list[PendingCharge]) -> asyncio.Future[None] | None:
        """Make charges already applied in memory durable (see the module docstring)."""
        journal = self._journal
        if journal is None:  # in memory: nothing outlives the process anyway
            self._batch.extend(pending)
            self._schedule_apply(loop)
            return None
        if len(self._batch) >= APPLY_BACKLOG:
            return _refused(loop, pending, ChargeNotRecorded(f"{len(self._batch)} charges wait for the state file"))
        if journal.fsync or self._pass_busy or self._unsynced:
            done = loop.create_future()  # written with the rest of this pass's charges: the caller waits
            self._unsynced.append((pending, done))
            if self._sync_handle is None:
                self._sync_handle = loop.call_soon(self._sync)
            return done
        self._pass_busy = True  # the pass's first charge: written now, and its call goes on at once
        loop.call_soon(self._pass_over)
        self._journal_seq += 1
        try:
            journal.append(charge_journal.encode(self._journal_seq, _entries(pending)))
        except OSError as exc:
            return _refused(loop, pending, exc)
        self._batch.extend(pending)
        self._schedule_apply(loop)
        return None

    def _pass_over(self) -> None:
        self._pass_busy = False

    def _sync(self, schedule_apply: bool = True) -> None:
        """Write this pass's grouped charges in one `write()` (and `fdatasync` with FULL), then release
        their callers."""
        if self._sync_handle is not None:
            self._sync_handle.cancel()
            self._sync_handle = None
        units, self._unsynced = self._unsynced, []
        if not units:
            return
        lines = []
        for pending, _ in units:
            self._journal_seq += 1
            lines.append(charge_journal.encode(self._journal_seq, _entries(pending)))
        try:
            assert self._journal is not None
            self._journal.append(b"".join(lines))
        except OSError as exc:
            for pending, done in reversed(units):
                _undo(pending)
                if not done.done():
                    done.set_exception(ChargeNotRecorded(str(exc) or type(exc).__name__))
            log.error("could not record %d charge(s): %s", sum(len(p) for p, _ in units), exc)
            return
        for pending, done in units:
            self._batch.extend(pending)
            if not done.done():  # a waiter cancelled meanwhile: the charge is recorded all the same
                done.set_result(None)
        if schedule_apply:
            self._schedule_apply(asyncio.get_running_loop())

    def _schedule_apply(self, loop: asyncio.AbstractEventLoop) -> None:
        if len(self._batch) >= APPLY_MAX:
            if self._apply_handle is not None:
                self._apply_handle.cancel()
            self._apply_handle = loop.call_soon(self.flush)
        elif self._apply_handle is None:
            self._apply_handle = loop.call_later(APPLY_SECONDS, self.flush)

    def flush(self: Any) -> None:
        """Write every pending charge to SQLite now (one transaction), then empty the journal."""
        if self._apply_handle is not None:
            self._apply_handle.cancel()
            self._apply_handle = None
        if self._unsynced:
            self._sync(schedule_apply=False)
        batch = self._batch
        if not batch:
            return
        try:
            _write(self, [(p.event, p.amount, p.balance) for p in batch], self._journal_seq)
        except Exception as exc:  # answered charges are never undone: keep them (journalled) and retry
            log.error("could not write %d charge(s) to the state file (kept, retrying): %s", len(batch), exc)
            with contextlib.suppress(RuntimeError):  # no loop (closing): the journal keeps them for the next start
                self._apply_handle = asyncio.get_running_loop().call_later(APPLY_RETRY_SECONDS, self.flush)
            return
        self._batch = []
        if self._journal is not None:
            self._journal.clear()

    def _open_journal(self: Any, path: str) -> ChargeJournal:
        db_id = self.get_meta(charge_journal.ID_META)
        if db_id is None:
            db_id = secrets.token_hex(8)
            self.set_meta(charge_journal.ID_META, db_id)
        try:
            return ChargeJournal(path, fsync=self.synchronous == "FULL", db_id=db_id)
        except ForeignJournal as exc:
            raise StateFileError(f"{exc}; move it away if the charges it holds belong to no state file") from exc

    def _replay_journal(self: Any) -> int:
        """At open: apply what the journal holds beyond SQLite's `journal_seq` (a crash); the count applied."""
        journal: ChargeJournal = self._journal
        applied = int(self.get_meta(charge_journal.SEQ_META) or 0)
        missing: list[Entry] = []
        last = applied
        for seq, entries in journal.units():
            if seq > applied:
                missing.extend(entries)
            last = max(last, seq)
        if missing:
            try:
                _write(self, missing, last)
            except (sqlite3.Error, ChargeNotRecorded) as exc:
                raise StateFileError(
                    f"the charge journal {journal.path} holds {len(missing)} charge(s) the state file lacks, "
                    f"and they cannot be applied to it: {exc}"
                ) from exc
            log.warning("applied %d charge(s) from %s that the state file did not have", len(missing), journal.path)
        journal.clear()
        self._journal_seq = last
        return len(missing)


def _entries(pending: list[PendingCharge]) -> list[Entry]:
    return [(p.event, p.amount, p.balance) for p in pending]


def _refused(loop: asyncio.AbstractEventLoop, pending: list[PendingCharge], exc: Exception) -> asyncio.Future[None]:
    """Undo charges that could not be journalled; a future that tells the caller so."""
    _undo(pending)
    log.error("could not record %d charge(s): %s", len(pending), exc)
    failed = loop.create_future()
    failed.set_exception(ChargeNotRecorded(str(exc) or type(exc).__name__))
    return failed


def _undo(pending: list[PendingCharge]) -> None:
    for p in reversed(pending):
        p.record.credits += p.amount
        p.record.total_spent -= p.amount
        p.record.total_calls -= 1


def _write(store: _StoreCore, entries: list[Entry], seq: int) -> None:
    """One transaction: each key's balance and counters once, then a ledger entry and a usage row per charge."""
    totals: dict[str, list[Any]] = {}  # key_hash -> [amount, calls, last_used_at]
    for event, amount, _ in entries:
        t = totals.get(event.key_hash)
        if t is None:
            totals[event.key_hash] = [amount, 1, event.timestamp]
        else:
            t[0] += amount
            t[1] += 1
            t[2] = event.timestamp
    db = store.db
    db.execute("BEGIN IMMEDIATE")
    try:
        for key_hash, (amount, calls, last_used) in totals.items():
            if db.execute(CHARGE_SQL, (amount, calls, last_used, key_hash)).fetchone() is None:
                raise ChargeNotRecorded(f"stored balance of {key_hash[:12]}… below the charges")
        db.executemany(
            LEDGER_SQL,
            [(e.timestamp, e.key_hash, -amount, "charge", balance, e.tool) for e, amount, balance in entries if amount],
        )
        db.executemany(USAGE_SQL, [usage_row(e) for e, _, _ in entries])
        if store._journal is not None:
            store.set_meta(charge_journal.SEQ_META, str(seq))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
