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
    for row in rollup(f, p, "tool", "reason"):
        if admitted_reason(row.group[1]):  # a denied call never reached the tool
            calls[str(row.group[0])] += row.calls
    users = {str(g[0]): n for g, n in f.count_distinct("tool", namespace=p.namespace, admitted=True).items()}
    # Tools per key counted by the store; only the listed keys' tools are read (one key's rows each).
    tool_counts = f.count_distinct("key", of="tool", namespace=p.namespace, admitted=True)
    names = f.key_by_hash()
    ranked = [(names[str(g[0])], n) for g, n in tool_counts.items() if str(g[0]) in names]
    ranked.sort(key=lambda kn: (-kn[1], kn[0].name, kn[0].masked))
    key_map: list[dict[str, Any]] = []
    for record, count in ranked[: p.limit]:
        rows = f.rollup("tool", key_hash=record.key_hash, namespace=p.namespace)
        tools = sorted(str(r.group[0]) for r in rows if r.allowed)
        key_map.append({"keyName": record.name, "key": record.masked, "tools": tools, "toolCount": count})
    unused = sorted(available - set(calls))
    return {
        "summary": {
            "totalTools": len(available | set(calls)),
            "usedTools": len(calls),
            "unusedTools": len(unused),
            "keysWithCalls": len(ranked),
        },
        "toolUsage": [
            {"tool": tool, "totalCalls": n, "uniqueKeys": users.get(tool, 0)}
            for tool, n in sorted(calls.items(), key=lambda tn: (-tn[1], tn[0]))
        ],
        "keyToolMap": key_map,
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
