"""Report: anomalies (docs/analytics-money.md). The reference's rules over key state and denials (high denial
rate, rapid credit depletion, low credits), and usage spikes: each key's and each tool's hourly calls in the
last 24 complete hours of the range, scored with a robust z-score against the 7 days before them
(money_methods.worst_spike)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports.money_common import TREND_HOURS, CallParams, CallScope
from paygate.analytics.reports.money_methods import MIN_HISTORY_HOURS, Z_THRESHOLD, Spike, worst_spike
from paygate.analytics.shaping import allocated, key_label
from paygate.analytics.window import Window, iso_hour
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.store.rollups import HOUR, hour_of

Severity = Literal["critical", "warning", "info"]
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
DENIAL_RATE = 0.5  # more than half denied …
DENIAL_MIN_CALLS = 3  # … of at least this many calls
DEPLETED = 0.75  # at least this share of the allocation spent
LOW_CREDITS, LOW_REMAINING = 10, 0.1
BASELINE_HOURS = 168  # the history a spike is measured against: the week before the recent day
SPIKE_MIN_CALLS = 10  # fewer calls in an hour is never a spike
MAX_SPIKE_CANDIDATES = 200  # keys whose history is read for spikes: the busiest recent hours first


class AnomalyParams(CallParams):
    severity: Severity | None = None
    threshold: float = Field(default=Z_THRESHOLD, ge=1, le=100, description="robust z-score a spike reaches")
    limit: int = Field(default=100, ge=1, le=10_000, description="rows in anomalies")


def whole_percent(fraction: float) -> int:
    """A fraction as a whole percentage, halves rounded up (as the reference's descriptions print them)."""
    return int(fraction * 100 + 0.5)


def _anomaly(kind: str, severity: str, record: KeyRecord | None, description: str, **details: Any) -> dict[str, Any]:
    label = key_label(record) if record is not None else {"name": None, "key": None}
    return {
        "type": kind,
        "severity": severity,
        "keyName": label["name"],
        "key": label["key"],
        "tool": details.pop("tool", None),
        "description": description,
        "details": details,
    }


def _state_rules(s: CallScope, keys: Sequence[KeyRecord]) -> list[dict[str, Any]]:
    found = []
    in_scope = {k.key_hash: k for k in keys}
    for row in s.rollup("key"):
        record = in_scope.get(str(row.group[0]))
        if record is None or row.calls < DENIAL_MIN_CALLS or row.denied / row.calls <= DENIAL_RATE:
            continue
        rate = row.denied / row.calls
        found.append(
            _anomaly(
                "high_denial_rate",
                "warning",
                record,
                f'Key "{record.name}" has {whole_percent(rate)}% denial rate ({row.denied}/{row.calls} calls denied)',
                allowed=row.allowed,
                denied=row.denied,
                total=row.calls,
                denialRate=round(rate, 4),
            )
        )
    for k in keys:
        given, spent = allocated(k), k.total_spent
        if given <= 0 or spent <= 0:
            continue
        used, left = spent / given, k.credits / given
        if used >= DEPLETED:
            found.append(
                _anomaly(
                    "rapid_credit_depletion",
                    "warning",
                    k,
                    f'Key "{k.name}" has used {whole_percent(used)}% of allocated credits ({spent}/{given})',
                    totalAllocated=given,
                    totalSpent=spent,
                    remaining=k.credits,
                    utilization=round(used, 4),
                )
            )
        if k.credits <= LOW_CREDITS or left <= LOW_REMAINING:
            found.append(
                _anomaly(
                    "low_credits",
                    "info",
                    k,
                    f'Key "{k.name}" has only {k.credits} credits remaining ({whole_percent(left)}% of allocated)',
                    remaining=k.credits,
                    totalAllocated=given,
                    remainingPct=round(left, 4),
                )
            )
    return found


def spike_hours(f: Facts) -> tuple[list[int], list[int]]:
    """The recent hours (the last 24 complete hours of the range) and the baseline week before them."""
    current = hour_of(f.now)
    recent = [h for h in f.window.last_hours(TREND_HOURS + 1).hours() if h < current][-TREND_HOURS:]
    if not recent:
        return [], []
    return list(range(recent[0] - BASELINE_HOURS, recent[0])), recent


def _spike(calls: dict[int, int], start: int, baseline: list[int], recent: list[int], threshold: float) -> Spike | None:
    if max((calls.get(h, 0) for h in recent), default=0) < SPIKE_MIN_CALLS:
        return None  # the common case, decided before building any history
    history = [float(calls.get(h, 0)) for h in baseline if h >= start]
    return worst_spike(history, [(h, float(calls.get(h, 0))) for h in recent], threshold, SPIKE_MIN_CALLS)


def _describe(spike: Spike, who: str, threshold: float) -> dict[str, Any]:
    severity = "critical" if spike.z >= 2 * threshold else "warning"
    text = (
        f"{who} made {int(spike.value)} calls in the hour from {iso_hour(spike.hour)}: {spike.z} robust deviations "
        f"above its usual {spike.centre:g} per hour"
    )
    details = {
        "hour": iso_hour(spike.hour),
        "calls": int(spike.value),
        "medianCalls": spike.centre,
        "scale": spike.scale,
        "zScore": spike.z,
        "flaggedHours": spike.flagged_hours,
    }
    return {"severity": severity, "description": text, **details}


def _key_candidates(
    f: Facts, s: CallScope, keys: Sequence[KeyRecord], baseline: list[int], recent: list[int]
) -> list[tuple[KeyRecord, dict[int, int]]]:
    """Keys that made at least SPIKE_MIN_CALLS calls in some recent hour (the busiest MAX_SPIKE_CANDIDATES),
    with their hourly calls over baseline and recent hours. Reading a week of every key's hours would read
    most of a large fleet's rollups; only candidates' baselines are read, one key at a time (indexed)."""
    in_scope = {k.key_hash: k for k in keys}
    recent_calls: dict[str, dict[int, int]] = defaultdict(dict)
    window = Window(f.now, recent[0] * HOUR, recent[-1] * HOUR)
    key_hash = None if s.key is None else s.key.key_hash
    for row in f.rollup("hour", "key", window=window, key_hash=key_hash, namespace=s.namespace):
        if isinstance(row.group[1], str) and row.group[1] in in_scope:
            recent_calls[row.group[1]][int(row.group[0] or 0)] = row.calls
    busy = [(max(c.values()), h) for h, c in recent_calls.items() if max(c.values()) >= SPIKE_MIN_CALLS]
    busy.sort(key=lambda mh: (-mh[0], mh[1]))
    out = []
    past = Window(f.now, baseline[0] * HOUR, baseline[-1] * HOUR)
    for _, h in busy[:MAX_SPIKE_CANDIDATES]:
        calls = dict(recent_calls[h])
        for row in f.rollup("hour", window=past, key_hash=h, namespace=s.namespace):
            calls[int(row.group[0] or 0)] = row.calls
        out.append((in_scope[h], calls))
    return out


def _spikes(f: Facts, s: CallScope, keys: Sequence[KeyRecord], threshold: float) -> list[dict[str, Any]]:
    baseline, recent = spike_hours(f)
    if not recent:
        return []
    span = Window(f.now, baseline[0] * HOUR, recent[-1] * HOUR)
    key_hash = None if s.key is None else s.key.key_hash
    by_tool: dict[str, dict[int, int]] = defaultdict(dict)
    for row in f.rollup("hour", "tool", window=span, key_hash=key_hash, namespace=s.namespace):
        by_tool[str(row.group[1])][int(row.group[0] or 0)] = row.calls
    found = []
    for k, calls in _key_candidates(f, s, keys, baseline, recent):
        spike = _spike(calls, max(baseline[0], hour_of(k.created_at)), baseline, recent, threshold)
        if spike is not None:
            d = _describe(spike, f'Key "{k.name}"', threshold)
            found.append(_anomaly("usage_spike", d.pop("severity"), k, d.pop("description"), **d))
    for tool, calls in by_tool.items():
        spike = _spike(calls, min(calls), baseline, recent, threshold)  # a tool's history starts at its first call
        if spike is not None:
            d = _describe(spike, f'Tool "{tool}"', threshold)
            found.append(_anomaly("tool_usage_spike", d.pop("severity"), None, d.pop("description"), tool=tool, **d))
    return found


def anomalies(f: Facts, p: AnomalyParams) -> dict[str, Any]:
    s = CallScope(f, p)
    keys = s.live_keys()
    found = _state_rules(s, keys) + _spikes(f, s, keys, p.threshold)
    if p.severity is not None:
        found = [a for a in found if a["severity"] == p.severity]
    found.sort(
        key=lambda a: (SEVERITY_RANK[a["severity"]], a["type"], a["keyName"] or "", a["key"] or "", a["tool"] or "")
    )
    by_type: dict[str, int] = defaultdict(int)
    by_severity: dict[str, int] = defaultdict(int)
    for a in found:
        by_type[a["type"]] += 1
        by_severity[a["severity"]] += 1
    baseline, recent = spike_hours(f)
    return {
        "summary": {"totalAnomalies": len(found), "byType": dict(by_type), "bySeverity": dict(by_severity)},
        "anomalies": found[: p.limit],
        "method": {
            "threshold": p.threshold,
            "minHistoryHours": MIN_HISTORY_HOURS,
            "minCalls": SPIKE_MIN_CALLS,
            "baselineFrom": iso_hour(baseline[0]) if baseline else None,
            "recentFrom": iso_hour(recent[0]) if recent else None,
            "recentUntil": iso_hour(recent[-1] + 1) if recent else None,
        },
        "analyzedAt": iso_time(f.now),
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "anomalies",
        anomalies,
        "Keys with high denial rates, depleted or low credits, and keys / tools whose hourly calls spike.",
        AnomalyParams,
        "anomalies",
    ),
)
