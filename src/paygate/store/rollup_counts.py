"""Distinct keys (or tools) per group of a rollup query: how many consumers a tool had, how many tools a key
used. `fold_distinct` is the definition, from the calls one by one; `CallRollups.count_distinct` must answer
the same (tests/unit/store_contract/test_rollups.py). A store counts in its own way (SQLite: COUNT DISTINCT
over the level the planner picks); `distinct_of_rows` counts from the rows of `spread(query, of)`, for a store
without a faster way.

Calls without a valid key are no one's: they are never counted, whatever is counted. `admitted`: only
admitted calls count. `daily`: "hour" groups by the hour of the day (0-23, UTC), across days. `among`: only
these keys' calls count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from paygate.store.rollups import CallFact, Counted, Dim, Distinct, RollupQuery, RollupRow, group_of

Group = tuple[str | int | None, ...]


def fold_distinct(
    facts: Iterable[CallFact],
    query: RollupQuery,
    of: Distinct = "key",
    *,
    admitted: bool = False,
    daily: bool = False,
    among: Collection[str] | None = None,
) -> Counted:
    check(query, of, daily)
    seen: dict[Group, set[str]] = {}
    for fact in facts:
        if fact.key_hash is None or (admitted and not fact.allowed) or not query.covers(fact):
            continue
        if among is not None and fact.key_hash not in among:
            continue
        group = _of_day(query.by, group_of(fact, query.by)) if daily else group_of(fact, query.by)
        seen.setdefault(group, set()).add(fact.key_hash if of == "key" else fact.tool)
    return {group: len(values) for group, values in seen.items()}


def distinct_of_rows(
    rows: Iterable[RollupRow],
    query: RollupQuery,
    of: Distinct,
    *,
    admitted: bool,
    daily: bool,
    among: Collection[str] | None,
) -> Counted:
    """`fold_distinct` from the rows of `spread(query, of)`."""
    at = len(query.by)
    key_at = spread(query, of).by.index("key")
    seen: dict[Group, set[str]] = {}
    for row in rows:
        value, key = row.group[at], row.group[key_at]
        if not isinstance(key, str) or (admitted and not row.allowed) or (among is not None and key not in among):
            continue
        group = _of_day(query.by, row.group[:at]) if daily else row.group[:at]
        seen.setdefault(group, set()).add(str(value))
    return {group: len(values) for group, values in seen.items()}


def check(query: RollupQuery, of: Distinct, daily: bool) -> None:
    if of in query.by or (daily and "hour" not in query.by):
        raise ValueError(f"{of}s cannot be counted by {query.by!r}" + (" per hour of the day" if daily else ""))


def spread(query: RollupQuery, of: Distinct) -> RollupQuery:
    """`query` grouped by what is counted as well (and by key, last, if not already), without timings: the rows
    to count from."""
    by: tuple[Dim, ...] = (*query.by, of) if of == "key" or "key" in query.by else (*query.by, of, "key")
    return RollupQuery(by, query.since_hour, query.until_hour, query.key_hash, query.tool, query.namespace, False)


def _of_day(by: tuple[Dim, ...], group: Group) -> Group:
    return tuple(int(v or 0) % 24 if d == "hour" else v for d, v in zip(by, group, strict=True))
