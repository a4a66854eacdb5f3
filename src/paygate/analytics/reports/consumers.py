"""Reports: consumers (docs/analytics-consumers.md). Who calls, how much, how often, and who is at the edge
of a limit. This module: insights, segmentation, lifetime value, retention, activity; consumers_state.py:
spend velocity, risk score, growth, key ranking; consumers_limits.py: rate limits and quotas.

Each key's calls and credits are its rollups over the range (all recorded history by default); balances,
creation times and statuses are the key records as they are now."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports import consumers_limits, consumers_state
from paygate.analytics.reports.consumers_common import (
    MAX_LIST,
    ConsumerFilter,
    ConsumerParams,
    KeyUsage,
    TopTenParams,
    select,
    tools_used,
    usage,
)
from paygate.analytics.shaping import key_label
from paygate.analytics.window import iso_day
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.store.rollups import DAY

# Segments by admitted calls in the range, busiest first: (name, fewest calls).
SEGMENTS: tuple[tuple[str, int], ...] = (("power", 20), ("regular", 5), ("casual", 1), ("dormant", 0))
# Value tiers by credits spent: (name, fewest credits).
TIERS: tuple[tuple[str, int], ...] = (("high", 100), ("medium", 10), ("low", 0))


def ranked(
    keys: list[KeyRecord], use: dict[str, KeyUsage], metric: str, limit: int
) -> list[tuple[KeyRecord, KeyUsage]]:
    """Keys with a positive `metric` (calls or spent), largest first; ties by name, then masked key."""
    rows = [(k, use.get(k.key_hash, KeyUsage())) for k in keys]
    rows = [r for r in rows if getattr(r[1], metric) > 0]
    rows.sort(key=lambda r: (-getattr(r[1], metric), r[0].name, r[0].masked))
    return rows[:limit]


def consumer_insights(f: Facts, p: TopTenParams) -> dict[str, Any]:
    sel = select(f, p, live=False)  # revoked keys spent too
    use = usage(f, sel)
    spenders = ranked(sel.keys, use, "spent", p.limit)
    active = ranked(sel.keys, use, "calls", p.limit)
    tools = tools_used(f, sel, (k.key_hash for k, _ in spenders + active))

    def entry(k: KeyRecord, u: KeyUsage) -> dict[str, Any]:
        return {
            **key_label(k),
            "totalSpent": u.spent,
            "totalCalls": u.calls,
            "uniqueTools": tools.get(k.key_hash, 0),
        }

    return {
        "summary": {
            "totalConsumers": len(sel.keys),
            "activeConsumers": sum(1 for u in use.values() if u.calls),
            "totalCreditsSpent": sum(u.spent for u in use.values()),
            "totalCalls": sum(u.calls for u in use.values()),
        },
        "topSpenders": [entry(k, u) for k, u in spenders],
        "mostActive": [entry(k, u) for k, u in active],
        **f.window.echo(),
    }


def segment_of(calls: int) -> str:
    return next(name for name, least in SEGMENTS if calls >= least)


def consumer_segmentation(f: Facts, p: ConsumerFilter) -> dict[str, Any]:
    sel = select(f, p)
    use = usage(f, sel)
    segments: dict[str, dict[str, Any]] = {
        name: {"segment": name, "count": 0, "totalCredits": 0, "totalSpent": 0, "calls": 0} for name, _ in SEGMENTS
    }
    for k in sel.keys:
        u = use.get(k.key_hash, KeyUsage())
        s = segments[segment_of(u.calls)]
        s["count"] += 1
        s["totalCredits"] += k.credits
        s["totalSpent"] += u.spent
        s["calls"] += u.calls
    rows = []
    for s in segments.values():
        calls = s.pop("calls")
        rows.append({**s, "avgCallsPerKey": round(calls / s["count"], 2) if s["count"] else 0.0})
    return {"segments": rows, "summary": {"totalConsumers": len(sel.keys)}, **f.window.echo()}


class LifetimeParams(ConsumerFilter):
    limit: int = Field(default=20, ge=1, le=MAX_LIST, description="consumers listed")


def tier_of(spent: int) -> str:
    return next(name for name, least in TIERS if spent >= least)


def consumer_lifetime_value(f: Facts, p: LifetimeParams) -> dict[str, Any]:
    sel = select(f, p)
    use = usage(f, sel)
    valued = ranked(sel.keys, use, "spent", p.limit)
    tools = tools_used(f, sel, (k.key_hash for k, _ in valued))
    total = sum(use.get(k.key_hash, KeyUsage()).spent for k in sel.keys)
    return {
        "consumers": [
            {
                **key_label(k),
                "lifetimeValue": u.spent,
                "totalCalls": u.calls,
                "avgSpendPerCall": round(u.spent / u.calls, 2) if u.calls else 0.0,
                "toolsUsed": tools.get(k.key_hash, 0),
                "tier": tier_of(u.spent),
            }
            for k, u in valued
        ],
        "summary": {
            "totalConsumers": len(sel.keys),
            "totalLifetimeValue": total,
            "avgLifetimeValue": round(total / len(sel.keys)) if sel.keys else 0,
        },
        **f.window.echo(),
    }


def consumer_retention(f: Facts, p: ConsumerFilter) -> dict[str, Any]:
    sel = select(f, p)
    use = usage(f, sel)
    end = f.window.end
    cohorts: dict[int, dict[str, int]] = {}
    for k in sel.keys:
        if k.created_at > end:  # created after the range: it could not have called in it
            continue
        u = use.get(k.key_hash, KeyUsage())
        c = cohorts.setdefault(int(k.created_at // DAY), {"created": 0, "retained": 0, "spent": 0})
        c["created"] += 1
        c["retained"] += u.calls > 0
        c["spent"] += u.spent
    created = sum(c["created"] for c in cohorts.values())
    retained = sum(c["retained"] for c in cohorts.values())
    return {
        "cohorts": [
            {
                "period": iso_day(day),
                "created": c["created"],
                "retained": c["retained"],
                "retentionRate": round(100 * c["retained"] / c["created"]),
                "avgSpend": round(c["spent"] / c["created"]),
            }
            for day, c in sorted(cohorts.items(), reverse=True)
        ],
        "summary": {
            "totalKeys": created,
            "retainedKeys": retained,
            "overallRetentionRate": round(100 * retained / created) if created else 0,
        },
        **f.window.echo(),
    }


def consumer_activity(f: Facts, p: ConsumerParams) -> dict[str, Any]:
    sel = select(f, p)
    use = usage(f, sel)
    rows = [(k, use.get(k.key_hash, KeyUsage())) for k in sel.keys]
    rows.sort(key=lambda r: (-r[1].spent, -r[1].calls, r[0].name, r[0].masked))
    active = sum(1 for _, u in rows if u.calls)
    return {
        "consumers": [
            {
                **key_label(k),
                "totalCalls": u.calls,
                "deniedCalls": u.denied,
                "totalSpent": u.spent,
                "creditsRemaining": k.credits,
                "lastActive": iso_time(k.last_used_at),
                "status": "active" if u.calls else "inactive",
            }
            for k, u in rows[: p.limit]
        ],
        "summary": {"totalConsumers": len(rows), "activeConsumers": active, "inactiveConsumers": len(rows) - active},
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "consumer-insights",
        consumer_insights,
        "Per-key behaviour: top spenders, most active callers, tool diversity, totals.",
        TopTenParams,
        "topSpenders",
    ),
    Report(
        "consumer-segmentation",
        consumer_segmentation,
        "Live keys in power / regular / casual / dormant segments by calls in the range.",
        ConsumerFilter,
        "segments",
    ),
    Report(
        "consumer-lifetime-value",
        consumer_lifetime_value,
        "Credits each live key spent in the range, with value tiers and tool diversity.",
        LifetimeParams,
        "consumers",
    ),
    Report(
        "consumer-retention",
        consumer_retention,
        "Live keys by creation day: how many called in the range, and their average spend.",
        ConsumerFilter,
        "cohorts",
    ),
    Report(
        "consumer-activity",
        consumer_activity,
        "Each live key's calls, spend, balance, last call and active / inactive status.",
        ConsumerParams,
        "consumers",
    ),
    *consumers_state.REPORTS,
    *consumers_limits.REPORTS,
)
