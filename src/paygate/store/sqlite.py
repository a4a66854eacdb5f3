"""SQLite store: the embedded default.

WAL journal, `synchronous=NORMAL`: a committed transaction survives the
process being killed (`kill -9`); only a power loss can drop the last few
commits (use `synchronous=FULL` via `PAYGATE_SQLITE_SYNC=FULL` for that).
Key records are mirrored in memory so the hot path reads no disk; every
mutation writes through in one transaction before it returns.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from paygate.core.ratelimit import RateDecision, SlidingWindow
from paygate.store.records import ChargeResult, KeyRecord, LedgerEntry, UsageEvent
from paygate.store.schema import MIGRATIONS

MEMORY = ":memory:"

_KEY_COLUMNS = (
    "key_hash", "prefix", "last4", "name", "credits", "created_at", "total_spent", "total_calls",
    "last_used_at", "active", "suspended", "expires_at", "namespace", "spending_limit", "alias", "doc",
)
# Fields kept in the JSON `doc` column: policy data the hot path reads from memory only.
_DOC_FIELDS = ("allowed_tools", "denied_tools", "quota", "tags", "ip_allowlist", "extra")


def _row_to_record(row: sqlite3.Row) -> KeyRecord:
    doc: dict[str, Any] = json.loads(row["doc"]) if row["doc"] else {}
    return KeyRecord(
        key_hash=row["key_hash"], prefix=row["prefix"], last4=row["last4"], name=row["name"],
        credits=row["credits"], created_at=row["created_at"], total_spent=row["total_spent"],
        total_calls=row["total_calls"], last_used_at=row["last_used_at"], active=bool(row["active"]),
        suspended=bool(row["suspended"]), expires_at=row["expires_at"], namespace=row["namespace"],
        spending_limit=row["spending_limit"], alias=row["alias"],
        **{f: doc[f] for f in _DOC_FIELDS if f in doc},
    )


def _record_values(r: KeyRecord) -> tuple[Any, ...]:
    full = asdict(r)
    doc = json.dumps({f: full[f] for f in _DOC_FIELDS}, separators=(",", ":"))
    return (
        r.key_hash, r.prefix, r.last4, r.name, r.credits, r.created_at, r.total_spent, r.total_calls,
        r.last_used_at, int(r.active), int(r.suspended), r.expires_at, r.namespace, r.spending_limit,
        r.alias, doc,
    )


class SQLiteStore:
    """Implements `paygate.store.base.Store` on one SQLite file (or `:memory:`)."""

    def __init__(self, path: str | Path = MEMORY) -> None:
        self.path = str(path)
        self._db: sqlite3.Connection | None = None
        self._keys: dict[str, KeyRecord] = {}
        self._windows = SlidingWindow()

    # lifecycle -----------------------------------------------------------
    def open(self) -> None:
        if self.path != MEMORY:
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            os.path.expanduser(self.path), isolation_level=None, check_same_thread=False
        )
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        sync = os.environ.get("PAYGATE_SQLITE_SYNC", "NORMAL").upper()
        db.execute(f"PRAGMA synchronous={'FULL' if sync == 'FULL' else 'NORMAL'}")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA foreign_keys=ON")
        self._db = db
        self._migrate()
        self._keys = {r.key_hash: r for r in map(_row_to_record, db.execute("SELECT * FROM keys"))}

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
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
        db = self.db
        placeholders = ",".join("?" * len(_KEY_COLUMNS))
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(f"INSERT INTO keys ({','.join(_KEY_COLUMNS)}) VALUES ({placeholders})",
                       _record_values(record))
            if record.credits:
                self._ledger(record.key_hash, record.credits, memo, record.credits, None)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._keys[record.key_hash] = record

    def update_key(self, record: KeyRecord) -> None:
        """Write a record's policy fields. Money fields are never written here."""
        values = _record_values(record)
        self.db.execute(
            "UPDATE keys SET name=?, last_used_at=?, active=?, suspended=?, expires_at=?, namespace=?, "
            "spending_limit=?, alias=?, doc=? WHERE key_hash=?",
            (values[3], values[8], values[9], values[10], values[11], values[12], values[13],
             values[14], values[15], record.key_hash),
        )
        self._keys[record.key_hash] = record

    # money ---------------------------------------------------------------
    def _ledger(self, key_hash: str, delta: int, kind: str, balance: int, memo: str | None) -> None:
        self.db.execute(
            "INSERT INTO ledger (ts, key_hash, delta, kind, balance_after, memo) VALUES (?,?,?,?,?,?)",
            (time.time(), key_hash, delta, kind, balance, memo),
        )

    def charge(self, key_hash: str, amount: int, event: UsageEvent) -> ChargeResult:
        """Deduct `amount` if the balance covers it, and record the call, in one transaction."""
        record = self._keys.get(key_hash)
        if record is None:
            return ChargeResult(False, 0)
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "UPDATE keys SET credits = credits - ?1, total_spent = total_spent + ?1, "
                "total_calls = total_calls + 1, last_used_at = ?2 "
                "WHERE key_hash = ?3 AND credits >= ?1 RETURNING credits",
                (amount, event.timestamp, key_hash),
            ).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return ChargeResult(False, record.credits)
            balance = int(row[0])
            if amount:
                self._ledger(key_hash, -amount, "charge", balance, event.tool)
            self._insert_usage(event)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        record.credits = balance
        record.total_spent += amount
        record.total_calls += 1
        record.last_used_at = event.timestamp
        return ChargeResult(True, balance)

    def _move(self, key_hash: str, delta: int, kind: str, memo: str, spent_delta: int) -> ChargeResult:
        record = self._keys.get(key_hash)
        if record is None:
            return ChargeResult(False, 0)
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "UPDATE keys SET credits = credits + ?1, total_spent = total_spent + ?2 "
                "WHERE key_hash = ?3 AND credits + ?1 >= 0 RETURNING credits",
                (delta, spent_delta, key_hash),
            ).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return ChargeResult(False, record.credits)
            balance = int(row[0])
            self._ledger(key_hash, delta, kind, balance, memo)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        record.credits = balance
        record.total_spent += spent_delta
        return ChargeResult(True, balance)

    def refund(self, key_hash: str, amount: int, memo: str) -> ChargeResult:
        return self._move(key_hash, amount, "refund", memo, -amount)

    def topup(self, key_hash: str, amount: int, memo: str) -> ChargeResult:
        return self._move(key_hash, amount, "topup", memo, 0)

    def charge_up_to(self, key_hash: str, amount: int, memo: str) -> tuple[int, int]:
        """Deduct as much of `amount` as the balance allows; returns (charged, balance)."""
        record = self._keys.get(key_hash)
        if record is None:
            return 0, 0
        take = min(amount, record.credits)
        if take <= 0:
            return 0, record.credits
        result = self._move(key_hash, -take, "surcharge", memo, take)
        return (take, result.balance) if result.ok else (0, result.balance)

    # windowed counters ---------------------------------------------------
    def rate_hit(self, subject: str, limit: int, now: float) -> RateDecision:
        return self._windows.hit(subject, limit, now)

    def rate_peek(self, subject: str, limit: int, now: float) -> RateDecision:
        return self._windows.peek(subject, limit, now)

    def rate_undo(self, subject: str) -> None:
        self._windows.undo(subject)

    def rate_sweep(self, now: float) -> None:
        self._windows.forget_idle(now)

    # usage and ledger ----------------------------------------------------
    def _insert_usage(self, e: UsageEvent) -> None:
        self.db.execute(
            "INSERT INTO usage (ts, key_hash, key_masked, key_name, tool, credits, allowed, deny_reason,"
            " namespace, request_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (e.timestamp, e.key_hash, e.key_masked, e.key_name, e.tool, e.credits, int(e.allowed),
             e.deny_reason, e.namespace, e.request_id),
        )

    def record_denial(self, event: UsageEvent) -> None:
        self._insert_usage(event)  # autocommit: one statement, one transaction

    def query_usage(self, since: float | None = None, limit: int = 10_000) -> list[UsageEvent]:
        rows = self.db.execute(
            "SELECT * FROM (SELECT * FROM usage WHERE ts >= ? ORDER BY id DESC LIMIT ?) ORDER BY id",
            (since or 0.0, limit),
        ).fetchall()
        return [
            UsageEvent(
                timestamp=r["ts"], key_hash=r["key_hash"], key_masked=r["key_masked"],
                key_name=r["key_name"], tool=r["tool"], credits=r["credits"], allowed=bool(r["allowed"]),
                deny_reason=r["deny_reason"], namespace=r["namespace"], request_id=r["request_id"],
            )
            for r in rows
        ]

    def ledger(self, key_hash: str | None = None) -> list[LedgerEntry]:
        sql = "SELECT ts, key_hash, delta, kind, balance_after, memo FROM ledger"
        args: tuple[Any, ...] = ()
        if key_hash is not None:
            sql += " WHERE key_hash = ?"
            args = (key_hash,)
        return [LedgerEntry(*row) for row in self.db.execute(sql + " ORDER BY id", args)]

    # small documents -------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, name: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
            (name, value),
        )
