"""Reports: money (docs/analytics-money.md). Here the reports over charged calls (costs, revenue, tool revenue
and profitability); key balances in money_credits.py; forecasts and anomalies in money_outlook.py."""

from __future__ import annotations

from typing import Any

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports import money_credits, money_outlook
from paygate.analytics.reports.money_common import CallParams, CallScope, balances, is_allowed
from paygate.analytics.shaping import percent, ratio
from paygate.analytics.window import iso_hour, short_hour
from paygate.store.rollups import RollupRow


def costs(f: Facts, p: CallParams) -> dict[str, Any]:
    s = CallScope(f, p)
    t = s.totals()
    tools = sorted(s.rollup("tool"), key=lambda r: (-r.credits, -r.calls, str(r.group[0])))
    return {
        "summary": {
            "totalCredits": t.credits,
            "totalCalls": t.calls,
            "totalAllowed": t.allowed,
            "totalDenied": t.denied,
            "totalRefunded": t.refunded,
            "avgCostPerCall": ratio(t.credits, t.allowed, 2),
        },
        "perTool": [
            {
                "tool": r.group[0],
                "calls": r.calls,
                "allowed": r.allowed,
                "denied": r.denied,
                "credits": r.credits,
                "refunded": r.refunded,
                "avgCost": ratio(r.credits, r.allowed, 2),
            }
            for r in tools
        ],
        "perNamespace": [
            {"namespace": r.group[0], "calls": r.calls, "credits": r.credits}
            for r in sorted(s.rollup("namespace"), key=lambda r: (-r.credits, -r.calls, str(r.group[0])))
        ],
        "hourlyTrends": [
            {"hour": iso_hour(h), "calls": r.calls, "credits": r.credits, "denied": r.denied}
            for h, r in s.trend_hours()
        ],
        "topSpenders": [{**label, "credits": r.credits, "calls": r.calls} for label, r in s.spenders(p.limit)],
        **f.window.echo(),
    }


def revenue(f: Facts, p: CallParams) -> dict[str, Any]:
    s = CallScope(f, p)
    t = s.totals()
    tools = [r for r in s.rollup("tool") if r.allowed]
    tools.sort(key=lambda r: (-r.credits, -r.allowed, str(r.group[0])))
    return {
        "summary": {
            "totalRevenue": t.credits,
            "totalCalls": t.allowed,
            "totalRefunded": t.refunded,
            "averageRevenuePerCall": ratio(t.credits, t.allowed, 2),
        },
        "byTool": [
            {
                "tool": r.group[0],
                "revenue": r.credits,
                "calls": r.allowed,
                "refunded": r.refunded,
                "averagePerCall": ratio(r.credits, r.allowed, 2),
            }
            for r in tools
        ],
        "byKey": [{**label, "revenue": r.credits, "calls": r.allowed} for label, r in s.spenders(p.limit)],
        "hourlyRevenue": [
            {"hour": short_hour(h), "revenue": r.credits, "calls": r.allowed} for h, r in s.trend_hours()
        ],
        "creditFlow": balances(s.live_keys()),
        **f.window.echo(),
    }


def _tool_callers(s: CallScope) -> tuple[dict[str, RollupRow], dict[str, int]]:
    """Per tool: its allowed calls summed (from the rows of admitted outcomes), and how many distinct keys
    made them."""
    sums: dict[str, RollupRow] = {}
    for r in s.rollup("tool", "reason"):
        if is_allowed(r.group[1]):
            sums.setdefault(str(r.group[0]), RollupRow((r.group[0],))).merge(r)
    among = None if s.key is None else frozenset((s.key.key_hash,))
    counted = s.f.count_distinct("tool", namespace=s.namespace, admitted=True, among=among)
    return sums, {str(group[0]): n for group, n in counted.items()}


def tool_revenue(f: Facts, p: CallParams) -> dict[str, Any]:
    sums, callers = _tool_callers(CallScope(f, p))
    total = sum(r.credits for r in sums.values())
    ranked = sorted(sums.items(), key=lambda tr: (-tr[1].credits, -tr[1].calls, tr[0]))
    tools = [
        {
            "tool": tool,
            "totalCredits": r.credits,
            "callCount": r.calls,
            "avgCreditsPerCall": ratio(r.credits, r.calls, 2),
            "uniqueConsumers": callers.get(tool, 0),
            "percentage": percent(r.credits, total),
        }
        for tool, r in ranked
    ]
    return {
        "tools": tools[: p.limit],
        "summary": {"totalTools": len(tools), "totalRevenue": total, "topTool": tools[0]["tool"] if tools else None},
        **f.window.echo(),
    }


def tool_profitability(f: Facts, p: CallParams) -> dict[str, Any]:
    sums, callers = _tool_callers(CallScope(f, p))
    ranked = sorted(sums.items(), key=lambda tr: (-tr[1].credits, -tr[1].calls, tr[0]))
    tools = [
        {
            "tool": tool,
            "totalCalls": r.calls,
            "totalRevenue": r.credits,
            "avgRevenuePerCall": ratio(r.credits, r.calls, 2),
            "callerCount": callers.get(tool, 0),
            "refunded": r.refunded,
            "failed": r.failed,
            "avgDurationMs": ratio(r.duration_ms, r.calls, 2),
            "revenuePerSecond": round(1000 * r.credits / r.duration_ms, 2) if r.duration_ms > 0 else None,
        }
        for tool, r in ranked
    ]
    return {
        "tools": tools[: p.limit],
        "summary": {
            "totalRevenue": sum(r.credits for r in sums.values()),
            "mostProfitable": tools[0]["tool"] if tools else None,
            "leastProfitable": tools[-1]["tool"] if tools else None,
        },
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "costs",
        costs,
        "Credits charged per tool, namespace and hour (last 24 h of the range), and the top spenders.",
        CallParams,
        "perTool",
    ),
    Report(
        "revenue",
        revenue,
        "Credits earned from admitted calls per tool, key and hour, and the live keys' credit flow.",
        CallParams,
        "byTool",
    ),
    *money_credits.REPORTS,
    *money_outlook.REPORTS,
    Report(
        "tool-revenue",
        tool_revenue,
        "Tools ranked by credits earned from admitted calls, with their share and distinct callers.",
        CallParams,
        "tools",
    ),
    Report(
        "tool-profitability",
        tool_profitability,
        "Per tool: revenue, calls, callers, refunds, backend failures and revenue per second of backend time.",
        CallParams,
        "tools",
    ),
)
