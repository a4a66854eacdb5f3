"""The durable audit log: one SQLite table (`audit`, migration 3) of published events.

Rows arrive in batches from the event bus (one transaction per batch, with the event's own id),
off the tool-call path. Retention is enforced by `prune`, which the audit service calls from a
ticker: older than a maximum age, or beyond a maximum count (the oldest go first), counted apart
for per-call traffic (`gate.allow` / `gate.deny`) and for everything else, so a busy gateway's
traffic never pushes its admin history out.
The class takes the store's connection so it shares its file, WAL and transactions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

TRAFFIC = "('gate.allow', 'gate.deny')"  # per-call events, retained apart from the rest


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    timestamp: float
    type: str
    actor: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries a query covers; empty `types` means every type. `since`/`until` are inclusive."""

    types: tuple[str, ...] = ()
    actor: str | None = None
    since: float | None = None
    until: float | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.types:
            clauses.append(f"type IN ({','.join('?' * len(self.types))})")
            args.extend(self.types)
        if self.actor is not None:
            clauses.append("actor = ?")
            args.append(self.actor)
        if self.since is not None:
            clauses.append("ts >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("ts <= ?")
            args.append(self.until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


@dataclass(frozen=True, slots=True)
class AuditStats:
    total: int
    oldest: float | None
    newest: float | None
    by_type: dict[str, int] = field(default_factory=dict)
    by_actor: dict[str, int] = field(default_factory=dict)


class AuditLog:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def append(self, ts: float, type_: str, actor: str, data: dict[str, Any]) -> int:
        # default=str: an event field of an unexpected type is recorded as text rather than lost.
        body = orjson.dumps(data, default=str).decode()
        cursor = self.db.execute("INSERT INTO audit (ts, type, actor, data) VALUES (?, ?, ?, ?)",
                                 (ts, type_, actor, body))
        return int(cursor.lastrowid or 0)

    def append_many(self, rows: Sequence[tuple[int, float, str, str, dict[str, Any]]]) -> None:
        """Insert `(id, ts, type, actor, data)` rows in one transaction."""
        values = [(i, ts, t, a, orjson.dumps(d, default=str).decode()) for i, ts, t, a, d in rows]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            # OR REPLACE: an id is never reused by the bus, so a clash can only be a restored row.
            self.db.executemany("INSERT OR REPLACE INTO audit (id, ts, type, actor, data) VALUES (?, ?, ?, ?, ?)",
                                values)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
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
        sql, args = where.where()
        rows = self.db.execute(f"SELECT id, ts, type, actor, data FROM audit{sql} ORDER BY id DESC LIMIT ?",
                               [*args, limit])
        return [AuditEntry(int(r[0]), float(r[1]), str(r[2]), str(r[3]), orjson.loads(r[4])) for r in rows]

    def about_key(self, masked: str, limit: int) -> list[AuditEntry]:
        """Admin entries (not per-call traffic) naming `masked` in any `…keyMasked` field (keyMasked,
        oldKeyMasked…), newest first.
        A scan of the data column: fine for a per-key report over a retention-bounded table."""
        rows = self.db.execute(
            f"SELECT id, ts, type, actor, data FROM audit WHERE type NOT IN {TRAFFIC} AND "
            "EXISTS (SELECT 1 FROM json_each(audit.data) AS f "
            "WHERE f.key LIKE '%keymasked' AND f.value = ?) ORDER BY id DESC LIMIT ?", (masked, limit))
        return [AuditEntry(int(r[0]), float(r[1]), str(r[2]), str(r[3]), orjson.loads(r[4])) for r in rows]

    def count(self, where: AuditFilter) -> int:
        sql, args = where.where()
        return int(self.db.execute(f"SELECT COUNT(*) FROM audit{sql}", args).fetchone()[0])

    def stats(self, top_actors: int) -> AuditStats:
        total, oldest, newest = self.db.execute("SELECT COUNT(*), MIN(ts), MAX(ts) FROM audit").fetchone()
        by_type = {str(t): int(n) for t, n in self.db.execute(
            "SELECT type, COUNT(*) AS n FROM audit GROUP BY type ORDER BY n DESC, type")}
        by_actor = {str(a): int(n) for a, n in self.db.execute(
            "SELECT actor, COUNT(*) AS n FROM audit GROUP BY actor ORDER BY n DESC, actor LIMIT ?", (top_actors,))}
        return AuditStats(int(total), oldest, newest, by_type, by_actor)

    def prune(self, now: float, max_entries: int, max_age_seconds: float) -> int:
        """Drop entries older than `max_age_seconds`, and all but the newest `max_entries` traffic
        entries and the newest `max_entries` other entries; how many went."""
        removed = self.db.execute("DELETE FROM audit WHERE ts < ?", (now - max_age_seconds,)).rowcount
        # ids grow with insertion order, so "the newest N" is "id above the (N+1)-th highest id".
        for test in (f"type IN {TRAFFIC}", f"type NOT IN {TRAFFIC}"):
            removed += self.db.execute(
                f"DELETE FROM audit WHERE {test} AND id <= "
                f"(SELECT id FROM audit WHERE {test} ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (max_entries,)).rowcount
        return int(removed)


def audit_log_of(store: object) -> AuditLog:
    """The audit log on a store's SQLite connection (the Store protocol has no audit methods yet)."""
    db = getattr(store, "db", None)
    if not isinstance(db, sqlite3.Connection):  # only the SQLite store exists today
        raise RuntimeError("the audit log needs the SQLite store")
    return AuditLog(db)
