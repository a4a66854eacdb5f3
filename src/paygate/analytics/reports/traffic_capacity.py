"""Traffic reports: what the fleet holds and uses (docs/analytics-traffic.md): capacity, dependencies."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports.traffic_common import (
    TREND_HOURS,
    TrafficParams,
    admitted_reason,
    merged,
    rollup,
    trend_window,
)
from paygate.analytics.shaping import allocated, percent
from paygate.core.records import KeyRecord

HIGH_UTILIZATION = 75.0  # percent of allocated credits spent: time to plan more
LOW_REMAINING = 0.10  # share of a key's allocation left that counts as running low


def _keys(f: Facts, p: TrafficParams) -> list[KeyRecord]:
    return [k for k in f.live_keys() if p.namespace is None or k.namespace == p.namespace]


def _usage(keys: list[KeyRecord]) -> dict[str, Any]:
    given = sum(allocated(k) for k in keys)
    spent = sum(k.total_spent for k in keys)
    return {
        "allocated": given,
        "spent": spent,
        "remaining": sum(k.credits for k in keys),
        "keys": len(keys),
        "utilizationPct": percent(spent, given),
    }


def capacity(f: Facts, p: TrafficParams) -> dict[str, Any]:
    keys = _keys(f, p)
    fleet = _usage(keys)
    calls = merged(rollup(f, p))
    recent = merged(rollup(f, p, window=trend_window(f)))
    per_hour = round(recent.credits / TREND_HOURS, 2)
    namespaces: dict[str, list[KeyRecord]] = defaultdict(list)
    for k in keys:
        namespaces[k.namespace].append(k)
    depleted = [k for k in keys if k.credits <= 0 and allocated(k) > 0]
    low = [k for k in keys if 0 < k.credits < LOW_REMAINING * allocated(k)]
    hours_left = round(fleet["remaining"] / per_hour, 1) if per_hour > 0 else None
    advice = []
    if fleet["utilizationPct"] >= HIGH_UTILIZATION:
        advice.append(f"{fleet['utilizationPct']:g}% of allocated credits are spent: plan more credits")
    if low:
        advice.append(f"{len(low)} key(s) have less than 10% credits remaining")
    if depleted:
        advice.append(f"{len(depleted)} key(s) have no credits left")
    if hours_left is not None and hours_left < TREND_HOURS:
        advice.append(f"At the last 24 hours' rate the remaining credits last about {hours_left:g} hours")
    spenders = sorted(keys, key=lambda k: (-k.total_spent, k.name, k.masked))[: p.limit]
    return {
        "summary": {
            "totalCreditsAllocated": fleet["allocated"],
            "totalCreditsSpent": fleet["spent"],
            "totalCreditsRemaining": fleet["remaining"],
            "utilizationPct": fleet["utilizationPct"],
            "keys": len(keys),
            "burnRate": {
                "creditsPerCall": round(calls.credits / calls.calls, 2) if calls.calls else 0.0,
                "totalCalls": calls.calls,
                "creditsPerHour": per_hour,
                "hoursUntilDepleted": hours_left,
            },
        },
        "topConsumers": [
            {
                "keyName": k.name,
                "key": k.masked,
                "creditsSpent": k.total_spent,
                "creditsRemaining": k.credits,
                "callCount": k.total_calls,
            }
            for k in spenders
        ],
        "byNamespace": {ns: _usage(members) for ns, members in sorted(namespaces.items())},
        "recommendations": advice,
        **f.window.echo(),
    }


def dependencies(f: Facts, p: TrafficParams) -> dict[str, Any]:
    available = {str(t.get("name")) for t in f.priced_tools() if t.get("name")}
    calls: dict[str, int] = defaultdict(int)
    users: dict[str, set[str]] = defaultdict(set)
    for row in rollup(f, p, "tool", "key", "reason"):
        tool, key, reason = row.group
        if not admitted_reason(reason):
            continue  # a denied call never reached the tool
        calls[str(tool)] += row.calls
        if isinstance(key, str):
            users[str(tool)].add(key)
    tools_of: dict[str, set[str]] = defaultdict(set)
    for tool, keys in users.items():
        for key in keys:
            tools_of[key].add(tool)
    names = f.key_by_hash()
    key_map: list[dict[str, Any]] = [
        {"keyName": names[h].name, "key": names[h].masked, "tools": sorted(ts), "toolCount": len(ts)}
        for h, ts in tools_of.items()
        if h in names
    ]
    key_map.sort(key=lambda e: (-e["toolCount"], e["keyName"], e["key"]))
    unused = sorted(available - set(calls))
    return {
        "summary": {
            "totalTools": len(available | set(calls)),
            "usedTools": len(calls),
            "unusedTools": len(unused),
            "keysWithCalls": len(key_map),
        },
        "toolUsage": [
            {"tool": tool, "totalCalls": n, "uniqueKeys": len(users[tool])}
            for tool, n in sorted(calls.items(), key=lambda tn: (-tn[1], tn[0]))
        ],
        "keyToolMap": key_map[: p.limit],
        "unusedTools": unused,
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "capacity",
        capacity,
        "Credits allocated / spent / remaining, burn rate, top spenders, per namespace, recommendations.",
        TrafficParams,
        "topConsumers",
    ),
    Report(
        "dependencies",
        dependencies,
        "Which keys use which tools: per-tool calls and keys, per-key tool lists, unused tools.",
        TrafficParams,
        "toolUsage",
    ),
)
