"""Cost tags, pure (docs/money-rules.md#cost-tags): the `X-Cost-Tags` header read and checked, and reports
by tag (group by one or more tags, a cross-tabulation of two, CSV).

A header is a JSON object of tag name -> string value, e.g. `{"team": "search", "project": "q4"}`. Names are
1-64 of `A-Za-z0-9_.:-`; values 1-`maxValueLength` printable characters. What an admin limits (the header's
size, the number of tags, the names allowed, each name's distinct values) is checked by the caller, who
keeps the values seen; `parse` checks the shape and the limits that need no memory.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

HEADER = b"x-cost-tags"
INVALID = "invalid_cost_tags"
REQUIRED = "cost_tags_required"
NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
NONE = "(none)"  # a report's value for calls that did not carry the tag


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int = 1024
    max_tags: int = 10
    max_value_length: int = 64
    allowed: frozenset[str] = frozenset()  # empty: any name


class BadTags(ValueError):
    """The header is refused: the message says why (shown to the caller)."""


def parse(raw: bytes | None, limits: Limits) -> dict[str, str]:
    """The header's tags, checked; {} when there is none."""
    if raw is None:
        return {}
    if len(raw) > limits.max_header_bytes:
        raise BadTags(f"X-Cost-Tags is {len(raw)} bytes; at most {limits.max_header_bytes}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadTags("X-Cost-Tags must be a JSON object of tag name to string value") from None
    if not isinstance(doc, dict):
        raise BadTags("X-Cost-Tags must be a JSON object of tag name to string value")
    if len(doc) > limits.max_tags:
        raise BadTags(f"X-Cost-Tags has {len(doc)} tags; at most {limits.max_tags}")
    for name, value in doc.items():
        if not NAME.match(name):
            raise BadTags(f"tag name {name[:70]!r} must be 1-64 of A-Z a-z 0-9 _ . : -")
        if limits.allowed and name not in limits.allowed:
            raise BadTags(f"tag {name!r} is not allowed (allowed: {', '.join(sorted(limits.allowed))})")
        if not isinstance(value, str) or not 1 <= len(value) <= limits.max_value_length or not value.isprintable():
            raise BadTags(f"tag {name!r} must be a printable string of 1 to {limits.max_value_length} characters")
    return doc


def canonical(tags: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(tags.items()))


@dataclass(frozen=True, slots=True)
class Row:
    """Calls and credits of one (day, key, tool, tag set)."""

    day: str
    key: str
    tool: str
    tags: dict[str, str]
    calls: int
    credits: int


def report(rows: Iterable[Row], group_by: Sequence[str]) -> dict[str, Any]:
    """Calls and credits grouped by the values of `group_by` (a call without a tag counts under "(none)"),
    the busiest first; with two dimensions, also their cross-tabulation."""
    groups: dict[tuple[str, ...], list[int]] = {}
    total = [0, 0]
    for row in rows:
        values = tuple(row.tags.get(name, NONE) for name in group_by)
        entry = groups.setdefault(values, [0, 0])
        entry[0] += row.calls
        entry[1] += row.credits
        total[0] += row.calls
        total[1] += row.credits
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))
    out: dict[str, Any] = {
        "groupBy": list(group_by),
        "rows": [{**dict(zip(group_by, k, strict=True)), "calls": v[0], "credits": v[1]} for k, v in ordered],
        "total": {"calls": total[0], "credits": total[1]},
    }
    if len(group_by) == 2:
        across = sorted({k[0] for k in groups})
        down = sorted({k[1] for k in groups})
        out["crossTab"] = {
            "rows": across,
            "columns": down,
            "credits": [[groups.get((a, d), [0, 0])[1] for d in down] for a in across],
            "calls": [[groups.get((a, d), [0, 0])[0] for d in down] for a in across],
        }
    return out


def to_csv(result: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    dims = list(result["groupBy"])
    writer.writerow([*dims, "calls", "credits"])
    for row in result["rows"]:
        writer.writerow([*(_safe(row[d]) for d in dims), row["calls"], row["credits"]])
    return out.getvalue()


def _safe(value: str) -> str:
    """A value a spreadsheet would run as a formula is quoted (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
