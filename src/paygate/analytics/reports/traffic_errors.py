"""Traffic reports: what went wrong (docs/analytics-traffic.md): sla, error-trends, error-breakdown,
tool-error-rate, denials. "Denied" is a call the gate refused (the reference's "errors"); "failed" is an
admitted call the backend answered with an error. Every report gives both, named so."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports.traffic_common import (
    TrafficParams,
    denied_reason,
    distinct_keys,
    merged,
    rollup,
    trend_window,
)
from paygate.analytics.shaping import by_group, key_label, percent, ratio
from paygate.analytics.window import short_hour
from paygate.core.values import iso_time
from paygate.store.rollups import RollupRow, hour_of

TREND_MARGIN = 1.0  # percentage points the second half's rate must move to be a trend


def _denials_by(rows: list[RollupRow], at: int, reason_at: int) -> dict[Any, Counter[str]]:
    """Denied calls per reason, by the value at `at` of rows grouped by (…, reason)."""
    out: dict[Any, Counter[str]] = defaultdict(Counter)
    for row in rows:
        reason = row.group[reason_at]
        if denied_reason(reason):
            out[row.group[at]][str(reason)] += row.calls
    return out


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda rc: (-rc[1], rc[0]))


def _top_reason(counts: Counter[str] | None) -> str | None:
    ranked = _ranked(counts or Counter())
    return ranked[0][0] if ranked else None


def sla(f: Facts, p: TrafficParams) -> dict[str, Any]:
    totals = merged(rollup(f, p))
    reasons = _denials_by(rollup(f, p, "reason"), 0, 0)
    denial_counts: Counter[str] = Counter()
    for counts in reasons.values():
        denial_counts.update(counts)
    tools = sorted(rollup(f, p, "tool"), key=lambda r: (-r.calls, str(r.group[0])))
    return {
        "summary": {
            "totalCalls": totals.calls,
            "allowedCalls": totals.allowed,
            "deniedCalls": totals.denied,
            "failedCalls": totals.failed,
            "successRate": percent(totals.allowed, totals.calls),
            "backendSuccessRate": percent(totals.allowed - totals.failed, totals.allowed) if totals.allowed else None,
            "denialReasons": dict(_ranked(denial_counts)),
        },
        "byTool": [
            {
                "tool": r.group[0],
                "totalCalls": r.calls,
                "allowedCalls": r.allowed,
                "deniedCalls": r.denied,
                "failedCalls": r.failed,
                "successRate": percent(r.allowed, r.calls),
                "backendSuccessRate": percent(r.allowed - r.failed, r.allowed) if r.allowed else None,
            }
            for r in tools
        ],
        "uptime": {"startedAt": iso_time(f.started_at), "uptimeSeconds": max(0, int(f.now - f.started_at))},
        **f.window.echo(),
    }


def _direction(first: RollupRow, second: RollupRow, part: str, whole: str) -> str:
    """improving / degrading / stable: the second half's rate against the first's (stable when either
    half has nothing to rate, or the rates are within TREND_MARGIN points)."""
    if not getattr(first, whole) or not getattr(second, whole):
        return "stable"
    change = percent(getattr(second, part), getattr(second, whole)) - percent(
        getattr(first, part), getattr(first, whole)
    )
    if change > TREND_MARGIN:
        return "degrading"
    if change < -TREND_MARGIN:
        return "improving"
    return "stable"


def halves(f: Facts, hours: list[RollupRow]) -> tuple[RollupRow, RollupRow]:
    """The range's calls split at its middle hour: from `since` (or the first hour with calls) to the end
    of the range; the second half holds the middle hour when the count is odd."""
    if not hours:
        return RollupRow(()), RollupRow(())
    start = f.window.since_hour if f.window.since_hour is not None else min(int(r.group[0] or 0) for r in hours)
    end = hour_of(f.window.end)
    middle = start + (end - start + 1) // 2
    first = merged(r for r in hours if int(r.group[0] or 0) < middle)
    second = merged(r for r in hours if int(r.group[0] or 0) >= middle)
    return first, second


def error_trends(f: Facts, p: TrafficParams) -> dict[str, Any]:
    totals = merged(rollup(f, p))
    first, second = halves(f, rollup(f, p, "hour"))
    reasons: Counter[str] = Counter()
    for counts in _denials_by(rollup(f, p, "reason"), 0, 0).values():
        reasons.update(counts)
    tools: list[dict[str, Any]] = [
        {
            "tool": r.group[0],
            "totalCalls": r.calls,
            "denials": r.denied,
            "errorRate": percent(r.denied, r.calls),
            "failed": r.failed,
            "failureRate": percent(r.failed, r.allowed),
        }
        for r in rollup(f, p, "tool")
    ]
    tools.sort(key=lambda t: (-t["errorRate"], -t["failureRate"], str(t["tool"])))
    return {
        "summary": {
            "totalCalls": totals.calls,
            "totalDenials": totals.denied,
            "overallErrorRate": percent(totals.denied, totals.calls),
            "trend": _direction(first, second, "denied", "calls"),
            "firstHalfErrorRate": percent(first.denied, first.calls),
            "secondHalfErrorRate": percent(second.denied, second.calls),
            "totalFailed": totals.failed,
            "overallFailureRate": percent(totals.failed, totals.allowed),
            "failureTrend": _direction(first, second, "failed", "allowed"),
        },
        "byTool": tools,
        "denialReasons": [{"reason": r, "count": c} for r, c in _ranked(reasons)],
        **f.window.echo(),
    }


def error_breakdown(f: Facts, p: TrafficParams) -> dict[str, Any]:
    totals = merged(rollup(f, p))
    by_reason = by_group(rollup(f, p, "reason"))
    affected = distinct_keys(f, p, "reason")
    failing = {row.group[0] for row in rollup(f, p, "key") if row.failed and isinstance(row.group[0], str)}
    errors = sorted(
        (
            {
                "reason": g[0],
                "count": r.calls,
                "percentage": percent(r.calls, totals.denied),
                "affectedConsumers": affected.get(g[0], 0),
            }
            for g, r in by_reason.items()
            if denied_reason(g[0])
        ),
        key=lambda e: (-e["count"], str(e["reason"])),
    )
    return {
        "errors": errors,
        "summary": {
            "totalDenied": totals.denied,
            "totalAllowed": totals.allowed,
            "errorRate": percent(totals.denied, totals.calls),
            "totalFailed": totals.failed,
            "failureRate": percent(totals.failed, totals.allowed),
            "failureAffectedConsumers": len(failing),
        },
        **f.window.echo(),
    }


def tool_error_rate(f: Facts, p: TrafficParams) -> dict[str, Any]:
    rows = rollup(f, p, "tool")
    tools: list[dict[str, Any]] = [
        {
            "tool": r.group[0],
            "totalRequests": r.calls,
            "allowed": r.allowed,
            "denied": r.denied,
            "errorRate": percent(r.denied, r.calls),
            "failed": r.failed,
            "failureRate": percent(r.failed, r.allowed),
        }
        for r in rows
    ]
    tools.sort(key=lambda t: (-t["errorRate"], -t["failureRate"], str(t["tool"])))
    totals = merged(rows)
    worst_failure = min(tools, key=lambda t: (-t["failureRate"], str(t["tool"])), default=None)
    return {
        "tools": tools,
        "summary": {
            "totalTools": len(tools),
            "overallErrorRate": percent(totals.denied, totals.calls),
            "highestErrorTool": tools[0]["tool"] if tools and tools[0]["denied"] else None,
            "overallFailureRate": percent(totals.failed, totals.allowed),
            "highestFailureTool": worst_failure["tool"] if worst_failure and worst_failure["failed"] else None,
        },
        **f.window.echo(),
    }


def denials(f: Facts, p: TrafficParams) -> dict[str, Any]:
    totals = merged(rollup(f, p))
    reasons: Counter[str] = Counter()
    for counts in _denials_by(rollup(f, p, "reason"), 0, 0).values():
        reasons.update(counts)
    key_reasons = _denials_by(rollup(f, p, "key", "reason"), 0, 1)
    names = f.key_by_hash()
    per_key = sorted(
        (
            {
                **key_label(names[h]),
                "calls": r.calls,
                "denials": r.denied,
                "denialRate": ratio(r.denied, r.calls),
                "topReason": _top_reason(key_reasons.get(h)),
            }
            for h, r in ((row.group[0], row) for row in rollup(f, p, "key"))
            if isinstance(h, str) and h in names and r.denied
        ),
        key=lambda k: (-k["denials"], k["name"], k["key"]),
    )
    tool_reasons = _denials_by(rollup(f, p, "tool", "reason"), 0, 1)
    per_tool: list[dict[str, Any]] = [
        {
            "tool": r.group[0],
            "calls": r.calls,
            "denials": r.denied,
            "denialRate": ratio(r.denied, r.calls),
            "topReason": _top_reason(tool_reasons.get(r.group[0])),
        }
        for r in rollup(f, p, "tool")
    ]
    per_tool.sort(key=lambda t: (-t["denials"], str(t["tool"])))
    trend = trend_window(f)
    hourly = by_group(rollup(f, p, "hour", window=trend))
    return {
        "summary": {
            "totalCalls": totals.calls,
            "totalDenials": totals.denied,
            "denialRate": ratio(totals.denied, totals.calls),
        },
        "byReason": dict(_ranked(reasons)),
        "perKey": per_key,
        "perTool": per_tool,
        "hourlyTrends": [
            {"hour": short_hour(h), "calls": row.calls, "denials": row.denied}
            for h in trend.hours()
            for row in [hourly.get((h,), RollupRow((h,)))]
        ],
        "mostDenied": [
            {k: e[k] for k in ("name", "key", "denials", "calls", "denialRate", "topReason")}
            for e in per_key[: p.limit]
        ],
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "sla",
        sla,
        "Success rate (admitted / calls), backend success rate, denial reasons, per-tool availability, uptime.",
        TrafficParams,
        "byTool",
    ),
    Report(
        "error-trends",
        error_trends,
        "Denial and backend-failure rates overall and per tool, denial reasons, their trend (first vs second half).",
        TrafficParams,
        "byTool",
    ),
    Report(
        "error-breakdown",
        error_breakdown,
        "Denied calls by reason: count, share, consumers affected; denial and backend-failure rates.",
        TrafficParams,
        "errors",
    ),
    Report(
        "tool-error-rate",
        tool_error_rate,
        "Per-tool denial and backend-failure rates; the tools with the highest of each.",
        TrafficParams,
        "tools",
    ),
    Report(
        "denials",
        denials,
        "Denials by reason, per key and tool (with the top reason), hourly (last 24 h), the most denied keys.",
        TrafficParams,
        "perKey",
    ),
)
