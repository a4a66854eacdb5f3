"""The audit log on SQLite: one table (`audit`, migration 3) on the store's connection.

It shares the store's file, WAL and connection; like every write of the store it runs on the
event loop, with explicit BEGIN IMMEDIATE … COMMIT for its batches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from paygate.store.audit_log import (
    AUTH_FAILURE_MAX_ENTRIES,
    AUTH_FAILURE_TYPES,
    TRAFFIC_TYPES,
    AuditEntry,
    AuditFilter,
    AuditStats,
)

TRAFFIC = "(" + ", ".join(f"'{t}'" for t in TRAFFIC_TYPES) + ")"
AUTH_FAILURES = "(" + ", ".join(f"'{t}'" for t in AUTH_FAILURE_TYPES) + ")"


def _where(f: AuditFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if f.types:
        clauses.append(f"type IN ({','.join('?' * len(f.types))})")
        args.extend(f.types)
    if f.actor is not None:
        clauses.append("actor = ?")
        args.append(f.actor)
    if f.since is not None:
        clauses.append("ts >= ?")
        args.append(f.since)
    if f.until is not None:
        clauses.append("ts <= ?")
        args.append(f.until)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _entry(r: sqlite3.Row | tuple[Any, ...]) -> AuditEntry:
    return AuditEntry(int(r[0]), float(r[1]), str(r[2]), str(r[3]), orjson.loads(r[4]))


class SQLiteAuditLog:
    """Implements `paygate.store.audit_log.AuditLog`; `connection()` is the store's open connection."""

    def __init__(self, connection: Callable[[], sqlite3.Connection]) -> None:
        self._connection = connection

    @property
    def db(self) -> sqlite3.Connection:
        return self._connection()

    def append(self, ts: float, type_: str, actor: str, data: dict[str, Any]) -> int:
        # default=str: an event field of an unexpected type is recorded as text rather than lost.
        body = orjson.dumps(data, default=str).decode()
        cursor = self.db.execute(
            "INSERT INTO audit (ts, type, actor, data) VALUES (?, ?, ?, ?)", (ts, type_, actor, body)
        )
        return int(cursor.lastrowid or 0)

    def append_many(self, rows: Sequence[tuple[int, float, str, str, dict[str, Any]]]) -> None:
        """Insert `(id, ts, type, actor, data)` rows in one transaction."""
        values = [(i, ts, t, a, orjson.dumps(d, default=str).decode()) for i, ts, t, a, d in rows]
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            # OR REPLACE: an id is never reused by the bus, so a clash can only be a restored row.
            db.executemany("INSERT OR REPLACE INTO audit (id, ts, type, actor, data) VALUES (?, ?, ?, ?, ?)", values)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def traffic_ids(self, limit: int) -> list[int]:
        """Ids of the newest `limit` traffic entries, oldest first."""
        rows = self.db.execute(f"SELECT id FROM audit WHERE type IN {TRAFFIC} ORDER BY id DESC LIMIT ?", (limit,))
        return [int(r[0]) for r in rows][::-1]

    def delete_traffic_through(self, last_id: int) -> int:
        """Drop traffic entries with ids up to `last_id`: two range scans of the (type, id) index."""
        return int(self.db.execute(f"DELETE FROM audit WHERE type IN {TRAFFIC} AND id <= ?", (last_id,)).rowcount)

    def max_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM audit").fetchone()[0])

    def query(self, where: AuditFilter, limit: int) -> list[AuditEntry]:
        """Matching entries, newest first, at most `limit`."""
        sql, args = _where(where)
        rows = self.db.execute(
            f"SELECT id, ts, type, actor, data FROM audit{sql} ORDER BY id DESC LIMIT ?", [*args, limit]
        )
        return [_entry(r) for r in rows]

    def about_key(self, masked: str, limit: int) -> list[AuditEntry]:
        """Admin entries (not per-call traffic) naming `masked` in any `…keyMasked` field (keyMasked,
        oldKeyMasked…), newest first.
        A scan of the data column: fine for a per-key report over a retention-bounded table."""
        rows = self.db.execute(
            f"SELECT id, ts, type, actor, data FROM audit WHERE type NOT IN {TRAFFIC} AND "
            "EXISTS (SELECT 1 FROM json_each(audit.data) AS f "
            "WHERE f.key LIKE '%keymasked' AND f.value = ?) ORDER BY id DESC LIMIT ?",
            (masked, limit),
        )
        return [_entry(r) for r in rows]

    def count(self, where: AuditFilter) -> int:
        sql, args = _where(where)
        return int(self.db.execute(f"SELECT COUNT(*) FROM audit{sql}", args).fetchone()[0])

    def stats(self, top_actors: int) -> AuditStats:
        db = self.db
        total, oldest, newest = db.execute("SELECT COUNT(*), MIN(ts), MAX(ts) FROM audit").fetchone()
        by_type = {
            str(t): int(n)
            for t, n in db.execute("SELECT type, COUNT(*) AS n FROM audit GROUP BY type ORDER BY n DESC, type")
        }
        by_actor = {
            str(a): int(n)
            for a, n in db.execute(
                "SELECT actor, COUNT(*) AS n FROM audit GROUP BY actor ORDER BY n DESC, actor LIMIT ?", (top_actors,)
            )
        }
        return AuditStats(int(total), oldest, newest, by_type, by_actor)

    def prune(
        self, now: float, max_entries: int, max_age_seconds: float, max_auth_failures: int = AUTH_FAILURE_MAX_ENTRIES
    ) -> int:
        """Drop entries older than `max_age_seconds`, and all but the newest `max_entries` traffic
        entries, the newest `max_auth_failures` failed authentications and the newest `max_entries`
        other entries (each class counted and pruned on its own); how many went."""
        db = self.db
        removed = db.execute("DELETE FROM audit WHERE ts < ?", (now - max_age_seconds,)).rowcount
        # ids grow with insertion order, so "the newest N" is "id above the (N+1)-th highest id".
        for test, keep in (
            (f"type IN {TRAFFIC}", max_entries),
            (f"type IN {AUTH_FAILURES}", max_auth_failures),
            (f"type NOT IN {TRAFFIC} AND type NOT IN {AUTH_FAILURES}", max_entries),
        ):
            removed += db.execute(
                f"DELETE FROM audit WHERE {test} AND id <= "
                f"(SELECT id FROM audit WHERE {test} ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (keep,),
            ).rowcount
        return int(removed)
