"""Traffic reports: how many calls, when (docs/analytics-traffic.md): traffic, request-trends, hourly-traffic,
peak-usage, daily-summary, access-heatmap."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports.traffic_common import (
    TrafficParams,
    admitted_by,
    distinct_keys,
    distinct_values,
    merged,
    peak,
    rollup,
    series_window,
    trend_window,
)
from paygate.analytics.shaping import by_group, by_key, key_label, percent, ratio
from paygate.analytics.window import iso_day, iso_hour, short_hour
from paygate.store.rollups import DAY, HOUR, RollupRow


def traffic(f: Facts, p: TrafficParams) -> dict[str, Any]:
    totals = merged(rollup(f, p))
    hours = rollup(f, p, "hour")
    busiest = peak(hours)
    tools = sorted(rollup(f, p, "tool"), key=lambda r: (-r.calls, str(r.group[0])))
    keyed = {h: r for h, r in by_key(rollup(f, p, "key")).items() if h is not None}
    names = f.key_by_hash()
    consumers = sorted(
        ((names[h], r) for h, r in keyed.items() if h in names), key=lambda kr: (-kr[1].calls, kr[0].name)
    )[: p.limit]
    trend = trend_window(f)
    per_hour = by_group(rollup(f, p, "hour", window=trend))
    namespaces = sorted(rollup(f, p, "namespace"), key=lambda r: (-r.calls, str(r.group[0])))
    return {
        "summary": {
            "totalCalls": totals.calls,
            "totalAllowed": totals.allowed,
            "totalDenied": totals.denied,
            "totalFailed": totals.failed,
            "successRate": ratio(totals.allowed, totals.calls),
            "failureRate": ratio(totals.failed, totals.allowed),
            "uniqueKeys": len(keyed),
            "uniqueTools": len(tools),
            "peakHour": short_hour(int(busiest.group[0] or 0)) if busiest else None,
            "peakHourCalls": busiest.calls if busiest else 0,
        },
        "toolPopularity": [
            {
                "tool": r.group[0],
                "calls": r.calls,
                "successRate": ratio(r.allowed, r.calls),
                "failed": r.failed,
                "credits": r.credits,
            }
            for r in tools
        ],
        "hourlyVolume": [
            {
                "hour": short_hour(h),
                "calls": row.calls,
                "allowed": row.allowed,
                "denied": row.denied,
                "failed": row.failed,
                "credits": row.credits,
            }
            for h in trend.hours()
            for row in [per_hour.get((h,), RollupRow((h,)))]
        ],
        "topConsumers": [
            {**key_label(k), "calls": r.calls, "successRate": ratio(r.allowed, r.calls), "credits": r.credits}
            for k, r in consumers
        ],
        "byNamespace": [
            {"namespace": r.group[0], "calls": r.calls, "allowed": r.allowed, "denied": r.denied, "credits": r.credits}
            for r in namespaces
        ],
        **f.window.echo(),
    }


def _avg_ms(row: RollupRow | None) -> float:
    return round(row.duration_ms / row.calls, 2) if row and row.calls else 0.0


def request_trends(f: Facts, p: TrafficParams) -> dict[str, Any]:
    window = series_window(f)
    hours = sorted(rollup(f, p, "hour", window=window), key=lambda r: int(r.group[0] or 0))
    speed = admitted_by(rollup(f, p, "hour", "reason", window=window), 1, keep=0)
    totals = merged(hours)
    busiest = peak(hours)
    return {
        "summary": {
            "totalRequests": totals.calls,
            "totalAllowed": totals.allowed,
            "totalDenied": totals.denied,
            "totalFailed": totals.failed,
            "totalCredits": totals.credits,
            "avgDurationMs": _avg_ms(merged(speed.values())),
            "peakHour": {"hour": iso_hour(int(busiest.group[0] or 0)), "total": busiest.calls} if busiest else None,
        },
        "hourly": [
            {
                "hour": iso_hour(int(r.group[0] or 0)),
                "total": r.calls,
                "allowed": r.allowed,
                "denied": r.denied,
                "failed": r.failed,
                "credits": r.credits,
                "avgDurationMs": _avg_ms(speed.get(r.group[0])),
            }
            for r in hours
        ],
        **window.echo(),
    }


def hourly_traffic(f: Facts, p: TrafficParams) -> dict[str, Any]:
    window = series_window(f)
    hours = sorted(rollup(f, p, "hour", window=window), key=lambda r: -int(r.group[0] or 0))
    consumers = distinct_keys(f, p, "hour", window=window)
    tools = distinct_values(rollup(f, p, "hour", "tool", window=window), 1, 0)
    totals = merged(hours)
    busiest = peak(hours)
    return {
        "hours": [
            {
                "timestamp": iso_hour(int(r.group[0] or 0)),
                "requests": r.calls,
                "allowed": r.allowed,
                "denied": r.denied,
                "failed": r.failed,
                "credits": r.credits,
                "uniqueConsumers": consumers.get(r.group[0], 0),
                "uniqueTools": tools.get(r.group[0], 0),
            }
            for r in hours
        ],
        "summary": {
            "totalRequests": totals.calls,
            "totalCredits": totals.credits,
            "busiestHour": iso_hour(int(busiest.group[0] or 0)) if busiest else None,
            "busiestHourRequests": busiest.calls if busiest else 0,
        },
        **window.echo(),
    }


def peak_usage(f: Facts, p: TrafficParams) -> dict[str, Any]:
    by_hour_of_day: dict[int, RollupRow] = {}
    for row in rollup(f, p, "hour"):
        hod = int(row.group[0] or 0) % 24
        by_hour_of_day.setdefault(hod, RollupRow((hod,))).merge(row)
    keys = distinct_keys(f, p, "hour", daily=True)
    total = sum(r.calls for r in by_hour_of_day.values())
    busiest = peak(list(by_hour_of_day.values()))
    return {
        "hours": [
            {
                "hour": hod,
                "requests": r.calls,
                "allowed": r.allowed,
                "denied": r.denied,
                "credits": r.credits,
                "uniqueConsumers": keys.get(hod, 0),
                "percentage": percent(r.calls, total),
            }
            for hod, r in sorted(by_hour_of_day.items())
        ],
        "summary": {
            "totalRequests": total,
            "peakHour": busiest.group[0] if busiest else None,
            "peakRequests": busiest.calls if busiest else 0,
        },
        **f.window.echo(),
    }


def daily_summary(f: Facts, p: TrafficParams) -> dict[str, Any]:
    days = by_group(rollup(f, p, "day"))
    consumers = distinct_keys(f, p, "day")
    tools = distinct_values(rollup(f, p, "day", "tool"), 1, 0)
    w = f.window
    start = None if w.since_hour is None else w.since_hour * HOUR
    end = None if w.until_hour is None else (w.until_hour + 1) * HOUR
    new_keys: dict[int, int] = defaultdict(int)
    for k in f.all_keys():
        inside = (start is None or k.created_at >= start) and (end is None or k.created_at < end)
        if inside and (p.namespace is None or k.namespace == p.namespace):
            new_keys[int(k.created_at // DAY)] += 1
    dates = sorted({int(g[0] or 0) for g in days} | set(new_keys), reverse=True)
    rows = [days.get((d,), RollupRow((d,))) for d in dates]
    total_requests = sum(r.calls for r in rows)
    return {
        "days": [
            {
                "date": iso_day(d),
                "requests": r.calls,
                "allowed": r.allowed,
                "denied": r.denied,
                "failed": r.failed,
                "creditsSpent": r.credits,
                "uniqueConsumers": consumers.get(d, 0),
                "uniqueTools": tools.get(d, 0),
                "newKeys": new_keys.get(d, 0),
            }
            for d, r in zip(dates, rows, strict=True)
        ],
        "summary": {
            "totalDays": len(dates),
            "totalRequests": total_requests,
            "totalCreditsSpent": sum(r.credits for r in rows),
            "totalNewKeys": sum(new_keys.values()),
            "averageRequestsPerDay": round(total_requests / len(dates), 2) if dates else 0.0,
        },
        **w.echo(),
    }


def access_heatmap(f: Facts, p: TrafficParams) -> dict[str, Any]:
    window = series_window(f)
    hours = sorted(rollup(f, p, "hour", window=window), key=lambda r: int(r.group[0] or 0))
    consumers = distinct_keys(f, p, "hour", window=window)
    tools: dict[Any, dict[str, int]] = defaultdict(dict)
    for row in rollup(f, p, "hour", "tool", window=window):
        tools[row.group[0]][str(row.group[1])] = row.calls
    busiest = peak(hours)
    return {
        "hourly": [
            {
                "hour": iso_hour(int(r.group[0] or 0)),
                "total": r.calls,
                "uniqueConsumers": consumers.get(r.group[0], 0),
                "tools": dict(sorted(tools[r.group[0]].items(), key=lambda tc: (-tc[1], tc[0]))),
            }
            for r in hours
        ],
        "summary": {
            "totalRequests": sum(r.calls for r in hours),
            "totalHours": len(hours),
            "peakHour": {"hour": iso_hour(int(busiest.group[0] or 0)), "total": busiest.calls} if busiest else None,
        },
        **window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "traffic",
        traffic,
        "Calls, admitted / denied / failed, by tool, hour (last 24 h), consumer and namespace; the peak hour.",
        TrafficParams,
        "toolPopularity",
    ),
    Report(
        "request-trends",
        request_trends,
        "Hourly calls, admitted / denied / failed, credits and average duration; the peak hour.",
        TrafficParams,
        "hourly",
    ),
    Report(
        "hourly-traffic",
        hourly_traffic,
        "Per-hour calls, admitted / denied / failed, credits, unique consumers and tools; the busiest hour.",
        TrafficParams,
        "hours",
    ),
    Report(
        "peak-usage",
        peak_usage,
        "Calls by hour of day (UTC): admitted / denied, credits, unique consumers, share; the peak hour.",
        TrafficParams,
        "hours",
    ),
    Report(
        "daily-summary",
        daily_summary,
        "Per-day calls, admitted / denied / failed, credits, unique consumers and tools, keys created.",
        TrafficParams,
        "days",
    ),
    Report(
        "access-heatmap",
        access_heatmap,
        "Per-hour calls by tool and unique consumers; the peak hour.",
        TrafficParams,
        "hourly",
    ),
)
