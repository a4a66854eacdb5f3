"""SQLite store: the embedded default.

WAL journal, `synchronous=NORMAL`: a committed transaction survives the
process being killed (`kill -9`); only a power loss can drop the last few
commits (`synchronous="FULL"`, the `sqliteSync` setting, closes that gap).
Key records are mirrored in memory so the hot path reads no disk; every
mutation writes through in one transaction before it returns.

Charges on the hot path (`charge_deferred`) are decided in memory, made
durable by one append to the charge journal beside the state file, and
written to SQLite in batches (store/group_commit.py, store/charge_journal.py).
Every other mutation, and every read of usage or the ledger, writes pending
charges first, so it never interleaves with an unwritten one.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paygate.core.ratelimit import RateDecision, SlidingWindow
from paygate.core.records import ChargeResult, KeyRecord, UsageEvent
from paygate.store.adjustments import Adjustments
from paygate.store.audit_log import AuditLog
from paygate.store.base import Store
from paygate.store.batch_charges import BatchCharges
from paygate.store.bulk_insert import BulkInsert
from paygate.store.charge_journal import SUFFIX as JOURNAL_SUFFIX
from paygate.store.charge_journal import ChargeJournal
from paygate.store.checkpoint import SAFETY_NET_PAGES, WalCheckpointer
from paygate.store.documents import DocumentTable
from paygate.store.errors import StateFileError
from paygate.store.group_commit import GroupCommit
from paygate.store.key_moves import KeyMoves
from paygate.store.outbox import Outbox
from paygate.store.rollups import CallRollups
from paygate.store.rows import (
    CHARGE_SQL,
    KEY_COLUMNS,
    LEDGER_SQL,
    USAGE_SQL,
    integrity_error,
    record_values,
    row_to_record,
    usage_row,
)
from paygate.store.schema import MIGRATIONS
from paygate.store.sqlite_audit import SQLiteAuditLog
from paygate.store.sqlite_documents import DocumentsAndMeta
from paygate.store.sqlite_outbox import SQLiteOutbox
from paygate.store.sqlite_rollups import SQLiteRollups
from paygate.store.state_file import StateFileLock
from paygate.store.usage_queries import UsageQueries

MEMORY = ":memory:"
SYNC_MODES = ("NORMAL", "FULL")
log = logging.getLogger("paygate.store")


class SQLiteStore(Adjustments, KeyMoves, UsageQueries, BatchCharges, GroupCommit, DocumentsAndMeta, BulkInsert):
    """Implements `paygate.store.base.Store` on one SQLite file (or `:memory:`)."""

    def __init__(self, path: str | Path = MEMORY, *, synchronous: str = "NORMAL") -> None:
        """`synchronous`: NORMAL (a commit survives a crash of the process) or FULL (and a power loss)."""
        if synchronous.upper() not in SYNC_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNC_MODES)}, not {synchronous!r}")
        self.path = str(path)
        self.synchronous = synchronous.upper()
        self._db: sqlite3.Connection | None = None
        self._keys: dict[str, KeyRecord] = {}
        self._windows = SlidingWindow()
        self._journal: ChargeJournal | None = None
        self._init_group_commit()
        self._checkpointer: WalCheckpointer | None = None
        self._lock: StateFileLock | None = None  # one process per state file (state_file.py)
        self._documents = DocumentTable()
        # the audit log and the webhook outbox: parts on the same connection (and so the same transactions)
        self.audit: AuditLog = SQLiteAuditLog(lambda: self.db)
        self.outbox: Outbox = SQLiteOutbox(lambda: self.db)
        self.rollups: CallRollups = SQLiteRollups(lambda: self.db)
        # Bumped by every change to a key's policy fields or to a document: caches of what the gate
        # derives from them (effective policies) are valid while it stays the same.
        self.generation = 0

    # lifecycle -----------------------------------------------------------
    def open(self) -> None:
        """Raises `StateFileInUse` when another process has the file open (state_file.py)."""
        if self.path != MEMORY:
            self._lock = StateFileLock(self.path)
            self._lock.acquire()  # and the files owner-only
        try:
            self._open()
        except BaseException:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
            self._release()
            raise

    def _open(self) -> None:
        db = sqlite3.connect(os.path.expanduser(self.path), isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StateFileError(
                f"{self.path} is not a PayGate state database ({exc}). A paygate-mcp JSON state file "
                "cannot be opened directly: convert it with `paygate-mcp import-state FILE --state-file NEW.db` "
                "(docs/migration.md), or bring keys over with --import-key KEY:CREDITS."
            ) from exc
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA foreign_keys=ON")
        if self.path != MEMORY:
            db.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")
            self._checkpointer = WalCheckpointer(os.path.expanduser(self.path))
            self._checkpointer.start()
        self._db = db
        self._migrate()
        if self.path != MEMORY:
            self._journal = self._open_journal(os.path.expanduser(self.path) + JOURNAL_SUFFIX)
            self._replay_journal()
        self._keys = {r.key_hash: r for r in map(row_to_record, db.execute("SELECT * FROM keys"))}
        self._documents.load(db)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._db is not None:
            self.flush()
            self._db.close()
            self._db = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for the store's own parts and SQLite-specific tests; not in the protocol."""
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    def _migrate(self) -> None:
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        current = row[0] if row else 0
        for version, statements in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            db.execute("BEGIN IMMEDIATE")
            for statement in statements:
                db.execute(statement)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version VALUES (?)", (version,))
            db.execute("COMMIT")

    # key records ---------------------------------------------------------
    def get_key(self, key_hash: str) -> KeyRecord | None:
        return self._keys.get(key_hash)

    def list_keys(self) -> list[KeyRecord]:
        return list(self._keys.values())

    def create_key(self, record: KeyRecord, memo: str = "create") -> None:
        self.flush()
        db = self.db
        placeholders = ",".join("?" * len(KEY_COLUMNS))
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(f"INSERT INTO keys ({','.join(KEY_COLUMNS)}) VALUES ({placeholders})", record_values(record))
            if record.credits:
                self._ledger(record.key_hash, record.credits, memo, record.credits, None)
            db.execute("COMMIT")
        except BaseException as exc:
            db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise integrity_error(exc, f"key {record.masked}") from exc
            raise
        self._keys[record.key_hash] = record
        self.generation += 1

    def update_key(self, record: KeyRecord) -> None:
        """Write a record's policy fields. Money fields are never written here."""
        self.flush()
        values = record_values(record)
        try:
            self.db.execute(
                "UPDATE keys SET name=?, last_used_at=?, active=?, suspended=?, expires_at=?, namespace=?, "
                "spending_limit=?, alias=?, doc=? WHERE key_hash=?",
                (
                    values[3],
                    values[8],
                    values[9],
                    values[10],
                    values[11],
                    values[12],
                    values[13],
                    values[14],
                    values[15],
                    record.key_hash,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise integrity_error(exc, f"alias of {record.masked}") from exc
        self._keys[record.key_hash] = record
        self.generation += 1

    # money ---------------------------------------------------------------
    def _ledger(self, key_hash: str, delta: int, kind: str, balance: int, memo: str | None) -> None:
        self.db.execute(LEDGER_SQL, (time.time(), key_hash, delta, kind, balance, memo))

    def _guarded_update(self, sql: str, args: tuple[Any, ...], then: Callable[[int], None]) -> int | None:
        """One transaction: a guarded `UPDATE … RETURNING credits`, then the rows that go with it
        (`then(new_balance)`). None, and nothing written, when the guard refused."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(sql, args).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return None
            balance = int(row[0])
            then(balance)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return balance

    def charge(self, key_hash: str, amount: int, event: UsageEvent) -> ChargeResult:
        """Deduct `amount` if the balance covers it, and record the call, in one transaction."""
        self.flush()
        record = self._keys.get(key_hash)
        if record is None:
            return ChargeResult(False, 0)

        def record_call(balance: int) -> None:
            if amount:
                self._ledger(key_hash, -amount, "charge", balance, event.tool)
            self._insert_usage(event)

        balance = self._guarded_update(CHARGE_SQL, (amount, 1, event.timestamp, key_hash), record_call)
        if balance is None:
            return ChargeResult(False, record.credits)
        record.credits = balance
        record.total_spent += amount
        record.total_calls += 1
        record.last_used_at = event.timestamp
        return ChargeResult(True, balance)

    # windowed counters ---------------------------------------------------
    def rate_hit(self, subject: str, limit: int, now: float) -> RateDecision:
        return self._windows.hit(subject, limit, now)

    def rate_peek(self, subject: str, limit: int, now: float) -> RateDecision:
        return self._windows.peek(subject, limit, now)

    def rate_move(self, old_key: str, new_key: str) -> None:
        self._windows.move(old_key, new_key)

    def rate_undo(self, subject: str) -> None:
        self._windows.undo(subject)

    def rate_sweep(self, now: float) -> None:
        self._windows.forget_idle(now)

    # usage and ledger ----------------------------------------------------
    def _insert_usage(self, e: UsageEvent) -> None:
        self.db.execute(USAGE_SQL, usage_row(e))

    def record_denial(self, event: UsageEvent) -> None:
        self.flush()
        self._insert_usage(event)  # autocommit: one statement, one transaction


if TYPE_CHECKING:  # mypy checks here that SQLiteStore implements every role of the Store protocol
    _conforms: type[Store] = SQLiteStore
