"""Call rollups on SQLite: the same sums in nine tables (migration 5) on the store's connection.

`call_rollup` holds every (hour, key, tool, namespace, reason); the others are coarser levels of it (without
the key, without the tool, per day, all time: `LEVELS`), so a report over millions of calls reads thousands of
rows. A batch of facts is summed in Python first (a busy gateway's batch is mostly a few keys and tools), then
added to every level with one UPSERT per group, in one transaction. A query is answered from the cheapest
levels that hold its dimensions and its range exactly (`rollups.plan`): whole days in the middle of a range
from a day table, the hours at its edges from an hour table.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from paygate.store.rollup_counts import check, spread
from paygate.store.rollups import (
    BASE,
    BUCKETS,
    CallFact,
    Counted,
    Dim,
    Distinct,
    Level,
    Part,
    RollupQuery,
    RollupRow,
    fold,
    plan,
)

LATENCY_COLUMNS = tuple(f"l{i}" for i in range(BUCKETS))
MEASURES = ("calls", "allowed", "denied", "failed", "credits", "refunded", "duration_ms", *LATENCY_COLUMNS)
COUNTS = MEASURES[:6]  # what the keyed coarse levels keep: one row per key each, so every column costs
LEVELS: tuple[Level, ...] = (
    Level("call_rollup", "hour", ("key", "tool", "namespace", "reason"), key_access=True),  # index (key, hour)
    Level("rollup_hour", "hour", ("tool", "namespace", "reason")),
    Level("rollup_hour_ns", "hour", ("namespace", "reason")),
    Level("rollup_day", "day", ("tool", "namespace", "reason")),
    Level("rollup_day_ns", "day", ("namespace", "reason")),
    Level("rollup_key_day", "day", ("key", "namespace", "reason"), timing=False),
    Level("rollup_tool", "all", ("tool", "namespace", "reason")),
    Level("rollup_key", "all", ("key", "namespace", "reason"), key_access=True),  # timings: migration 6
    Level("rollup_key_tool", "all", ("key", "tool", "namespace", "reason"), key_access=True, timing=False),
)
SPAN_LEVEL = "rollup_hour_ns"  # the smallest hourly table: its first and last hour are the data's
_COLUMN: dict[Dim, str] = {"key": "key_hash", "tool": "tool", "namespace": "namespace", "reason": "reason"}


def _columns(level: Level) -> list[str]:
    time = [] if level.grain == "all" else [level.grain]
    return time + [_COLUMN[d] for d in level.dims]


def measures_of(level: Level) -> tuple[str, ...]:
    return MEASURES if level.timing else COUNTS


# A batch is summed once in Python per (hour, key, tool, namespace, reason) into a temporary table, and SQLite
# adds those sums into each level (INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE), in C: summing into
# every level in Python cost ~3x as much per call, and summing the calls in SQL once per level ~5x.
_BASE = "temp.rollup_base"
_GRAIN = ("hour", "key_hash", "tool", "namespace", "reason")
_SETUP = f"CREATE TABLE IF NOT EXISTS {_BASE} ({', '.join(_GRAIN)}, {', '.join(MEASURES)})"
_INSERT_BASE = f"INSERT INTO {_BASE} VALUES ({', '.join('?' * (len(_GRAIN) + len(MEASURES)))})"
_CLEAR = f"DELETE FROM {_BASE}"


def _add_batch(level: Level) -> str:
    """The batch's sums added into `level`'s rows."""
    key = _columns(level)
    kept = measures_of(level)
    picked = [{"hour": "hour", "day": "hour / 24"}.get(c, c) for c in key]
    grouped = f" GROUP BY {', '.join(picked)}" if picked else ""
    return (
        f"INSERT INTO {level.name} ({', '.join(key + list(kept))}) "
        f"SELECT {', '.join(picked + [f'SUM({m})' for m in kept])} FROM {_BASE} WHERE true{grouped} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET " + ", ".join(f"{m} = {m} + excluded.{m}" for m in kept)
    )


_WRITES = [*(_add_batch(level) for level in LEVELS), _CLEAR]


class SQLiteRollups:
    """Implements `paygate.store.rollups.CallRollups`; `connection()` is the store's open connection."""

    def __init__(self, connection: Callable[[], sqlite3.Connection]) -> None:
        self._connection = connection

    @property
    def db(self) -> sqlite3.Connection:
        return self._connection()

    def record(self, facts: Sequence[CallFact]) -> None:
        self.record_sums(fold(facts, RollupQuery(BASE)))

    def record_sums(self, rows: Sequence[RollupRow]) -> None:
        if not rows:
            return
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            self.add_sums(rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def add_sums(self, rows: Sequence[RollupRow]) -> None:
        """`record_sums` inside the caller's open transaction (migrate-store's copy into SQLite is one)."""
        values = [
            (
                *r.group[:1],
                r.group[1] or "",
                *r.group[2:],
                r.calls,
                r.allowed,
                r.denied,
                r.failed,
                r.credits,
                r.refunded,
                r.duration_ms,
                *r.latency,
            )
            for r in rows
        ]  # '' stores "no key" (a primary key column cannot be NULL)
        db = self.db
        db.execute(_SETUP)
        db.executemany(_INSERT_BASE, values)
        for sql in _WRITES:
            db.execute(sql)

    def span(self) -> tuple[int, int] | None:
        """The first and last hour holding any call."""
        # Two subqueries: SQLite answers a lone MIN or MAX from the index, but both in one SELECT by a scan
        low, high = self.db.execute(
            f"SELECT (SELECT MIN(hour) FROM {SPAN_LEVEL}), (SELECT MAX(hour) FROM {SPAN_LEVEL})"
        ).fetchone()
        return None if low is None else (int(low), int(high))

    def plan(self, query: RollupQuery) -> list[Part]:
        return plan(query, LEVELS, self.span())

    def query(self, query: RollupQuery) -> list[RollupRow]:
        parts = self.plan(query)
        if not parts:
            return []
        selects, args = [], []
        for part in parts:
            sql, part_args = _select(part, query)
            selects.append(sql)
            args.extend(part_args)
        width = len(query.by)
        read = MEASURES if query.timing else COUNTS
        if len(selects) == 1:
            sql = selects[0]
        else:  # the parts' sums added up
            groups = [f"g{i}" for i in range(width)]
            sums = [f"SUM(m{i})" for i in range(len(read))]
            sql = f"SELECT {', '.join(groups + sums)} FROM ({' UNION ALL '.join(selects)})"
            if groups:
                sql += f" GROUP BY {', '.join(groups)}"
        cursor = self.db.cursor()
        cursor.row_factory = None  # plain tuples: ~30 % less per row than the connection's sqlite3.Row
        return _rows(cursor.execute(sql, args), query)

    def count_distinct(
        self,
        query: RollupQuery,
        of: Distinct = "key",
        *,
        admitted: bool = False,
        daily: bool = False,
        among: Collection[str] | None = None,
    ) -> Counted:
        """Counted in SQL (COUNT DISTINCT over the keyed levels the planner picks): only the counts come out."""
        check(query, of, daily)
        parts = self.plan(spread(query, of))
        if not parts:
            return {}
        selects, args = [], []
        for part in parts:
            sql, part_args = _values_of(part, query, of, admitted, daily, among)
            selects.append(sql)
            args.extend(part_args)
        groups = [f"g{i}" for i in range(len(query.by))]
        sql = f"SELECT {', '.join([*groups, 'COUNT(DISTINCT v)'])} FROM ({' UNION ALL '.join(selects)})"
        if groups:
            sql += f" GROUP BY {', '.join(groups)}"
        cursor = self.db.cursor()
        cursor.row_factory = None  # plain tuples: a row object per group costs more than the count
        return {tuple(r[:-1]): int(r[-1]) for r in cursor.execute(sql, args) if r[-1]}

    def rekey(self, old_hash: str, new_hash: str) -> None:
        """Called inside the store's rotation transaction: the old key's rows become the new key's (added to any
        the new key has, at every level)."""
        db = self.db
        for level in LEVELS:
            if "key" not in level.dims:
                continue
            key = _columns(level)
            kept = list(measures_of(level))
            picked = ["?" if c == "key_hash" else c for c in key]
            db.execute(
                f"INSERT INTO {level.name} ({', '.join(key + kept)}) "
                f"SELECT {', '.join(picked + kept)} FROM {level.name} WHERE key_hash = ? "
                f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET " + ", ".join(f"{m} = {m} + excluded.{m}" for m in kept),
                (new_hash, old_hash),
            )
            db.execute(f"DELETE FROM {level.name} WHERE key_hash = ?", (old_hash,))


def _rows(cursor: Iterable[tuple[Any, ...]], query: RollupQuery) -> list[RollupRow]:
    """The cursor's rows as RollupRows. Per row as little as can be: a report by key reads ten thousand."""
    width = len(query.by)
    key_at = query.by.index("key") if "key" in query.by else -1
    end = width + 6
    rows: list[RollupRow] = []
    append = rows.append
    for r in cursor:
        if r[width] is None:  # no rows at all: SUM over nothing
            continue
        group = r[:width]
        if key_at >= 0 and group[key_at] == "":  # '' stores "no key"
            group = (*group[:key_at], None, *group[key_at + 1 :])
        row = RollupRow(group, *r[width:end])
        if query.timing:
            row.duration_ms = float(r[end])
            row.latency = list(r[end + 1 :])
        append(row)
    return rows


def _groups(level: Level, query: RollupQuery, daily: bool = False) -> list[str]:
    """The SQL of each of the query's dimensions at `level` (`daily`: the hour of the day)."""
    groups = []
    for dim in query.by:
        if dim == "hour":
            groups.append("hour % 24" if daily else "hour")
        elif dim == "day":
            groups.append("day" if level.grain == "day" else "hour / 24")
        else:
            groups.append(_COLUMN[dim])
    return groups


def _where(part: Part, query: RollupQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    time = part.level.grain
    for condition, value in (
        (f"{time} >= ?", part.first),
        (f"{time} <= ?", part.last),
        ("key_hash = ?", query.key_hash),
        ("tool = ?", query.tool),
        ("namespace = ?", query.namespace),
    ):
        if value is not None:
            where.append(condition)
            args.append(value)
    return where, args


def _select(part: Part, query: RollupQuery) -> tuple[str, list[Any]]:
    """One part's sums, grouped by the query's dimensions (columns g0…, m0…)."""
    level = part.level
    groups = _groups(level, query)
    where, args = _where(part, query)
    read = MEASURES if query.timing else COUNTS  # (a level without timings only serves queries without)
    columns = [f"{g} AS g{i}" for i, g in enumerate(groups)] + [f"SUM({m}) AS m{i}" for i, m in enumerate(read)]
    sql = f"SELECT {', '.join(columns)} FROM {level.name}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if groups and groups == _columns(level)[: len(groups)]:  # the primary key's order: grouped as it is read, no sort
        sql += " GROUP BY " + ", ".join(groups)
    elif groups:  # `+`: grouping must not steer SQLite to scan the key index in key order (it reads every row)
        sql += " GROUP BY " + ", ".join(f"+{g}" for g in groups)
    return sql, args


def _values_of(
    part: Part, query: RollupQuery, of: Distinct, admitted: bool, daily: bool, among: Collection[str] | None
) -> tuple[str, list[Any]]:
    """One part's (group…, value) rows with a call (`admitted`: an admitted one) by a valid key (of `among`)."""
    groups = _groups(part.level, query, daily)
    where, args = _where(part, query)
    where.append("key_hash != ''")
    if admitted:
        where.append("allowed > 0")
    if among is not None:  # one parameter however many keys: a JSON list
        where.append("key_hash IN (SELECT value FROM json_each(?))")
        args.append(json.dumps(sorted(among)))
    columns = [f"{g} AS g{i}" for i, g in enumerate(groups)] + [f"{_COLUMN[of]} AS v"]
    return f"SELECT {', '.join(columns)} FROM {part.level.name} WHERE {' AND '.join(where)}", args
