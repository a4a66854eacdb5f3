"""Small shaping helpers every report family uses: rates, rounding, ranking, key labels, sums by key."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any, TypeVar

from paygate.core.records import KeyRecord
from paygate.reports.keys import key_status
from paygate.store.rollups import RollupRow

T = TypeVar("T")


def half_up(x: Fraction | float) -> int:
    """Rounded as the reference rounds scores (halves up, not to even), and exactly: give it a Fraction where
    the value is a sum or product of fractions (in floats 25/6 + 20/6 is 7.4999…, which rounds to 7, not 8)."""
    return math.floor(Fraction(x) + Fraction(1, 2))


def ratio(part: float, whole: float, digits: int = 4) -> float:
    """part / whole rounded (0 when whole is 0): the reference's rates (0.0267)."""
    return round(part / whole, digits) if whole else 0.0


def percent(part: float, whole: float, digits: int = 2) -> float:
    """part / whole as a percentage rounded (0 when whole is 0): 5.56."""
    return round(100 * part / whole, digits) if whole else 0.0


def top(rows: Iterable[T], sort_key: Callable[[T], Any], limit: int) -> list[T]:
    """The first `limit` rows by `sort_key`, largest first (ties keep their order)."""
    return sorted(rows, key=sort_key, reverse=True)[:limit]


def key_label(record: KeyRecord) -> dict[str, Any]:
    """How a report names a key: its name and its masked form (never the key)."""
    return {"name": record.name, "key": record.masked}


def status_of(record: KeyRecord, now: float) -> str:
    """active, suspended, revoked or expired, in the words (and order) the per-key views use."""
    return key_status(record, now)


def allocated(record: KeyRecord) -> int:
    """Credits a key has been given, as the reference counts them: what it holds plus what it spent."""
    return record.credits + record.total_spent


def by_key(rows: Sequence[RollupRow]) -> dict[str | None, RollupRow]:
    """Rows of a `rollup("key", …)` by key hash (None: calls without a valid key)."""
    return {row.group[0] if isinstance(row.group[0], str) else None: row for row in rows}


def by_group(rows: Sequence[RollupRow]) -> dict[tuple[Any, ...], RollupRow]:
    return {row.group: row for row in rows}
