"""Reports on tools: adoption, popularity, correlation (docs/analytics-tools.md).

A tool is "used" by a key that made an admitted call to it in the range (a denied call used nothing)."""

from __future__ import annotations

from itertools import combinations
from typing import Any

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports.tools_common import ScopeParams, admitted_by, cut, first_last_hours, live_in, summed
from paygate.analytics.shaping import percent
from paygate.analytics.window import iso_hour


def tool_adoption(f: Facts, p: ScopeParams) -> dict[str, Any]:
    calls = summed(f.rollup("tool", namespace=p.namespace))
    seen = first_last_hours(f, "tool", p.namespace)
    live = frozenset(k.key_hash for k in live_in(f, p.namespace))
    users = _users(f, p)
    live_users = _users(f, p, among=live)
    offered = {str(t.get("name")) for t in f.priced_tools() if t.get("name")}
    rows: list[dict[str, Any]] = []
    for tool in offered | set(calls):
        first_last = seen.get(tool)
        rows.append(
            {
                "tool": tool,
                "uniqueConsumers": users.get(tool, 0),
                "adoptionRate": percent(live_users.get(tool, 0), len(live)),
                "totalCalls": calls[tool].allowed if tool in calls else 0,
                "firstSeen": iso_hour(first_last[0]) if first_last else None,
                "lastSeen": iso_hour(first_last[1]) if first_last else None,
            }
        )
    rows.sort(key=lambda r: (-r["adoptionRate"], -r["totalCalls"], r["tool"]))
    used = sum(1 for r in rows if r["totalCalls"])
    return {
        "tools": cut(rows, p.limit),
        "summary": {
            "totalTools": len(rows),
            "usedTools": used,
            "unusedTools": len(rows) - used,
            "activeKeys": len(live),
        },
        **f.window.echo(),
    }


def tool_popularity(f: Facts, p: ScopeParams) -> dict[str, Any]:
    consumers = _users(f, p)
    sums = {tool: row for tool, row in summed(f.rollup("tool", namespace=p.namespace)).items() if row.allowed}
    total_calls = sum(r.allowed for r in sums.values())
    rows: list[dict[str, Any]] = [
        {
            "tool": tool,
            "totalCalls": row.allowed,
            "totalCredits": row.credits,
            "uniqueConsumers": consumers.get(tool, 0),
            "percentage": percent(row.allowed, total_calls),
            "failedCalls": row.failed,
        }
        for tool, row in sums.items()
    ]
    rows.sort(key=lambda r: (-r["totalCalls"], r["tool"]))
    return {
        "tools": cut(rows, p.limit),
        "summary": {
            "totalTools": len(rows),
            "totalCalls": total_calls,
            "totalCredits": sum(r.credits for r in sums.values()),
            "mostPopular": rows[0]["tool"] if rows else None,
        },
        **f.window.echo(),
    }


def _users(f: Facts, p: ScopeParams, among: frozenset[str] | None = None) -> dict[str, int]:
    """Per tool: how many keys made an admitted call to it (of `among`, when given)."""
    counted = f.count_distinct("tool", namespace=p.namespace, admitted=True, among=among)
    return {str(group[0]): n for group, n in counted.items()}


def tool_correlation(f: Facts, p: ScopeParams) -> dict[str, Any]:
    consumers = admitted_by(f.rollup("key", "tool", namespace=p.namespace))
    everyone = set().union(*consumers.values()) if consumers else set()
    pairs: list[dict[str, Any]] = []
    # Set intersections per pair of tools: tools are few (tens), keys many.
    for a, b in combinations(sorted(consumers), 2):
        shared = len(consumers[a] & consumers[b])
        if shared:
            pairs.append(
                {
                    "toolA": a,
                    "toolB": b,
                    "sharedConsumers": shared,
                    "strength": percent(shared, len(everyone)),
                    "consumersA": len(consumers[a]),
                    "consumersB": len(consumers[b]),
                }
            )
    pairs.sort(key=lambda r: (-r["sharedConsumers"], r["toolA"], r["toolB"]))
    return {
        "pairs": cut(pairs, p.limit),
        "summary": {"totalPairs": len(pairs), "totalConsumers": len(everyone), "totalTools": len(consumers)},
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "tool-adoption",
        tool_adoption,
        "Per tool: keys that used it, the share of active keys that did, admitted calls, first and last hour.",
        ScopeParams,
        "tools",
    ),
    Report(
        "tool-popularity",
        tool_popularity,
        "Tools ranked by admitted calls: credits, unique consumers, share of calls, backend failures.",
        ScopeParams,
        "tools",
    ),
    Report(
        "tool-correlation",
        tool_correlation,
        "Pairs of tools the same keys used in the range, by keys shared.",
        ScopeParams,
        "pairs",
    ),
)
