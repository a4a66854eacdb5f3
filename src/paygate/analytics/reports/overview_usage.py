"""`GET /analytics`: usage over time, per tool, per consumer, and against the period before
(docs/analytics-overview.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from paygate.analytics.engine import ReportParams
from paygate.analytics.facts import Facts
from paygate.analytics.shaping import key_label, ratio
from paygate.analytics.window import Window, iso_hour, parse_instant
from paygate.core.domain_errors import Invalid
from paygate.core.values import iso_time
from paygate.store.rollups import HOUR, RollupRow, hour_of

MAX_BUCKETS = 8784  # a year of hours: a longer hourly series keeps its newest buckets


class AnalyticsParams(ReportParams):
    """The reference's names (`from`, `to`, `granularity`, `topN`) and the common ones (`since`, `until`).
    `to` is an end instant (not counted, as the reference's buckets end there); `until` counts its hour."""

    from_: str | None = Field(default=None, alias="from", max_length=64)
    to: str | None = Field(default=None, max_length=64)
    granularity: Literal["hourly", "daily"] = "hourly"
    top_n: int = Field(default=10, ge=1, le=1000)
    namespace: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _reference_names(self) -> AnalyticsParams:
        if self.from_ is not None:
            if self.since is not None:
                raise ValueError("give from or since, not both")
            self.since = self.from_
        if self.to is not None:
            if self.until is not None:
                raise ValueError("give to or until, not both")
            try:
                end = parse_instant("to", self.to)
            except Invalid as exc:
                raise ValueError(exc.message) from exc
            assert end is not None
            self.until = iso_time(end - 0.001)  # the hour that ends at `to` is the last one counted
        return self


def _sums(rows: list[RollupRow]) -> RollupRow:
    total = RollupRow(())
    for row in rows:
        total.merge(row)
    return total


def _counts(row: RollupRow) -> dict[str, int]:
    return {"calls": row.calls, "credits": row.credits, "denied": row.denied}


def success_rate(row: RollupRow) -> float:
    """Calls admitted and answered without a backend error, of all calls (0-1)."""
    return ratio(row.allowed - row.failed, row.calls)


def _change(now: int, before: int) -> float | None:
    return round(100 * (now - before) / before, 2) if before else None


def _series(f: Facts, p: AnalyticsParams) -> tuple[list[dict[str, Any]], int | None, int | None]:
    """The buckets, and the first and last hour of the range counted (None: no range, no calls)."""
    rows = {int(r.group[0] or 0): r for r in f.rollup("hour", namespace=p.namespace)}
    w = f.window
    first = w.since_hour if w.since_hour is not None else min(rows, default=None)
    if first is None:
        return [], None, None
    last = hour_of(w.end)
    if p.granularity == "hourly":
        spans = [(h, h + 1) for h in range(max(first, last - MAX_BUCKETS + 1), last + 1)]
    else:
        spans = [(d * 24, d * 24 + 24) for d in range(first // 24, last // 24 + 1)]
    series = []
    for start, end in spans:
        bucket = _sums([rows[h] for h in range(max(start, first), min(end, last + 1)) if h in rows])
        series.append(
            {
                "start": iso_hour(start),
                "end": iso_hour(end),
                "calls": bucket.calls,
                "allowed": bucket.allowed,
                "denied": bucket.denied,
                "failed": bucket.failed,
                "credits": bucket.credits,
            }
        )
    return series, first, last


def _consumers(f: Facts, p: AnalyticsParams) -> tuple[list[dict[str, Any]], int]:
    """The top consumers by credits, each with its most called tool, and how many keys made calls. Ranked from
    the per-key sums; the tools are read for the top keys alone (one key's rows: an index read each)."""
    keyed = [row for row in f.rollup("key", namespace=p.namespace) if isinstance(row.group[0], str)]
    known = f.key_by_hash()
    ranked: list[tuple[dict[str, Any], str]] = []
    for row in keyed:
        key_hash = str(row.group[0])
        record = known.get(key_hash)
        if record is None:  # history of a key no longer in the store: nothing to name it by
            continue
        label = key_label(record)
        ranked.append(({"keyName": label["name"], "key": label["key"], **_counts(row)}, key_hash))
    ranked.sort(key=lambda ck: (-ck[0]["credits"], -ck[0]["calls"], ck[0]["keyName"], ck[0]["key"]))
    out = []
    for entry, key_hash in ranked[: p.top_n]:
        tools = f.rollup("tool", key_hash=key_hash, namespace=p.namespace)
        top_tool = min(tools, key=lambda r: (-r.calls, str(r.group[0])))
        out.append({**entry, "topTool": top_tool.group[0]})
    return out, len(keyed)


def analytics(f: Facts, p: AnalyticsParams) -> dict[str, Any]:
    series, first, last = _series(f, p)
    tools: list[dict[str, Any]] = []
    for row in f.rollup("tool", namespace=p.namespace):
        tools.append(
            {
                "tool": row.group[0],
                "calls": row.calls,
                "allowed": row.allowed,
                "denied": row.denied,
                "failed": row.failed,
                "credits": row.credits,
                "successRate": success_rate(row),
                "avgCreditsPerCall": round(row.credits / row.allowed, 2) if row.allowed else 0.0,
            }
        )
    tools.sort(key=lambda t: (-t["calls"], str(t["tool"])))
    consumers, unique_keys = _consumers(f, p)
    current = _sums(f.rollup(namespace=p.namespace))
    previous = RollupRow(())
    if first is not None and last is not None:
        span = last - first + 1
        before = Window(f.now, (first - span) * HOUR, first * HOUR - 1)
        previous = _sums(f.rollup(window=before, namespace=p.namespace))
    now_counts, before_counts = _counts(current), _counts(previous)
    return {
        "from": None if first is None else iso_hour(first),
        "to": None if last is None else iso_hour(last + 1),
        "granularity": p.granularity,
        "namespace": p.namespace,
        "timeSeries": series,
        "tools": tools,
        "topConsumers": consumers,
        "trend": {
            "current": now_counts,
            "previous": before_counts,
            "change": {name: _change(now_counts[name], before_counts[name]) for name in now_counts},
        },
        "summary": {
            "totalCalls": current.calls,
            "totalCredits": current.credits,
            "totalDenied": current.denied,
            "totalFailed": current.failed,
            "uniqueKeys": unique_keys,
            "uniqueTools": len(tools),
            "successRate": success_rate(current),
        },
    }
