"""Call rollups on SQLite: one table (`call_rollup`, migration 5) on the store's connection.

A batch of facts is summed in Python first (a busy gateway's batch is mostly a few keys and tools), then
added with one UPSERT per group in one transaction. Queries are one GROUP BY over the rows of the hours
asked for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from paygate.store.rollups import BUCKETS, CallFact, Dim, RollupQuery, RollupRow, fold

LATENCY_COLUMNS = tuple(f"l{i}" for i in range(BUCKETS))
MEASURES = ("calls", "allowed", "denied", "failed", "credits", "refunded", "duration_ms", *LATENCY_COLUMNS)
GROUP_BY: tuple[Dim, ...] = ("hour", "key", "tool", "namespace", "reason")
_INSERT = (
    f"INSERT INTO call_rollup (hour, key_hash, tool, namespace, reason, {', '.join(MEASURES)}) "
    f"VALUES ({', '.join('?' * (5 + len(MEASURES)))}) "
    "ON CONFLICT (hour, key_hash, tool, namespace, reason) DO UPDATE SET "
    + ", ".join(f"{m} = {m} + excluded.{m}" for m in MEASURES)
)
_COLUMN: dict[Dim, str] = {
    "hour": "hour",
    "day": "hour / 24",
    "key": "key_hash",
    "tool": "tool",
    "namespace": "namespace",
    "reason": "reason",
}


class SQLiteRollups:
    """Implements `paygate.store.rollups.CallRollups`; `connection()` is the store's open connection."""

    def __init__(self, connection: Callable[[], sqlite3.Connection]) -> None:
        self._connection = connection

    @property
    def db(self) -> sqlite3.Connection:
        return self._connection()

    def record(self, facts: Sequence[CallFact]) -> None:
        values = []
        for row in fold(facts, RollupQuery(GROUP_BY)):
            hour, key_hash, tool, namespace, reason = row.group
            values.append(
                (
                    hour,
                    key_hash or "",
                    tool,
                    namespace,
                    reason,
                    row.calls,
                    row.allowed,
                    row.denied,
                    row.failed,
                    row.credits,
                    row.refunded,
                    row.duration_ms,
                    *row.latency,
                )
            )
        if not values:
            return
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(_INSERT, values)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def query(self, query: RollupQuery) -> list[RollupRow]:
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("hour >= ?", query.since_hour),
            ("hour <= ?", query.until_hour),
            ("key_hash = ?", query.key_hash),
            ("tool = ?", query.tool),
            ("namespace = ?", query.namespace),
        ):
            if value is not None:
                where.append(column)
                args.append(value)
        groups = [_COLUMN[d] for d in query.by]
        sql = f"SELECT {', '.join([*groups, *(f'SUM({m})' for m in MEASURES)])} FROM call_rollup"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if groups:
            sql += " GROUP BY " + ", ".join(groups)
        rows: list[RollupRow] = []
        width = len(groups)
        for r in self.db.execute(sql, args):
            if r[width] is None:  # no rows at all: SUM over nothing
                continue
            values = zip(query.by, r[:width], strict=True)
            group = tuple((v or None) if d == "key" else v for d, v in values)  # '' stores "no key"
            calls, allowed, denied, failed, credits, refunded, duration = r[width : width + 7]
            rows.append(
                RollupRow(
                    group,
                    int(calls),
                    int(allowed),
                    int(denied),
                    int(failed),
                    int(credits),
                    int(refunded),
                    float(duration),
                    [int(v) for v in r[width + 7 :]],
                )
            )
        return rows

    def rekey(self, old_hash: str, new_hash: str) -> None:
        """Called inside the store's rotation transaction: the old key's rows become the new key's."""
        self.db.execute("UPDATE call_rollup SET key_hash = ? WHERE key_hash = ?", (new_hash, old_hash))
