"""Reads of the usage log and the ledger for the SQLite store (a mixin of `SQLiteStore`).

Each read flushes pending group-committed charges first, so it sees every acknowledged call.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol

from paygate.core.records import LedgerEntry, UsageEvent
from paygate.store.rows import row_to_usage


class _Reader(Protocol):
    @property
    def db(self) -> sqlite3.Connection: ...
    def flush(self) -> None: ...


class UsageQueries:
    def query_usage(
        self: _Reader,
        since: float | None = None,
        limit: int = 10_000,
        *,
        key_hash: str | None = None,
        namespace: str | None = None,
    ) -> list[UsageEvent]:
        """The newest `limit` events since `since` (oldest first), optionally of one key or namespace."""
        self.flush()
        where: list[str] = ["ts >= ?"]
        args: list[Any] = [since or 0.0]
        if key_hash is not None:
            where.append("key_hash = ?")
            args.append(key_hash)
        if namespace is not None:
            where.append("namespace = ?")
            args.append(namespace)
        rows = self.db.execute(
            f"SELECT * FROM (SELECT * FROM usage WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?) ORDER BY id",
            (*args, limit),
        ).fetchall()
        return [row_to_usage(r) for r in rows]

    def usage_sums(self: _Reader, since: float) -> dict[str, tuple[int, int]]:
        """Calls admitted and charged, and the credits charged at admission, per key, since `since`:
        less the calls refunded since then (their ledger entries), and without shadow mode's rows
        (observed, never charged)."""
        self.flush()
        sums: dict[str, tuple[int, int]] = {}
        rows = self.db.execute(
            "SELECT key_hash, COUNT(*), COALESCE(SUM(credits), 0) FROM usage "
            "WHERE allowed = 1 AND ts >= ? AND COALESCE(deny_reason, '') NOT LIKE 'shadow%' GROUP BY key_hash",
            (since,),
        )
        for key_hash, calls, credits in rows:
            sums[key_hash] = (int(calls), int(credits))
        refunds = self.db.execute(
            "SELECT key_hash, COUNT(*), SUM(delta) FROM ledger WHERE kind = 'refund' AND ts >= ? GROUP BY key_hash",
            (since,),
        )
        for key_hash, calls, credits in refunds:
            had_calls, had_credits = sums.get(key_hash, (0, 0))
            sums[key_hash] = (max(had_calls - int(calls), 0), max(had_credits - int(credits), 0))
        return sums

    def ledger(self: _Reader, key_hash: str | None = None) -> list[LedgerEntry]:
        self.flush()
        sql = "SELECT ts, key_hash, delta, kind, balance_after, memo FROM ledger"
        args: tuple[Any, ...] = ()
        if key_hash is not None:
            sql += " WHERE key_hash = ?"
            args = (key_hash,)
        return [LedgerEntry(*row) for row in self.db.execute(sql + " ORDER BY id", args)]

    def ledger_page(
        self: _Reader, key_hash: str, limit: int, *, since: float | None = None, before: int | None = None
    ) -> list[tuple[int, LedgerEntry]]:
        """One key's newest `limit` entries (newest first) since `since`, older than entry `before`."""
        self.flush()
        rows = self.db.execute(
            "SELECT id, ts, key_hash, delta, kind, balance_after, memo FROM ledger "
            "WHERE key_hash = ? AND ts >= ? AND id < ? ORDER BY id DESC LIMIT ?",
            (key_hash, since or 0.0, before if before is not None else 2**62, limit),
        )
        return [(int(row[0]), LedgerEntry(*row[1:])) for row in rows]

    def ledger_count(self: _Reader, key_hash: str) -> int:
        self.flush()
        row = self.db.execute("SELECT COUNT(*) FROM ledger WHERE key_hash = ?", (key_hash,)).fetchone()
        return int(row[0])
