"""Per-tool figures over request-log entries: the `/tools/stats` overview and one tool's detail."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from paygate.reports.request_log import RequestEntry, average_ms

TOP_CONSUMERS = 10


def p95(values: Sequence[float]) -> float:
    """The 95th percentile by nearest rank: the smallest value at least 95% of the values do not exceed."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def tool_figures(tool: str, entries: Sequence[RequestEntry]) -> dict[str, Any]:
    allowed = sum(1 for e in entries if e.allowed)
    return {
        "tool": tool,
        "totalCalls": len(entries),
        "allowed": allowed,
        "denied": len(entries) - allowed,
        "successRate": round(100 * allowed / len(entries), 1) if entries else 0,
        "totalCredits": sum(e.credits for e in entries),
        "avgDurationMs": average_ms(entries),
    }


def overview(entries: Iterable[RequestEntry]) -> dict[str, Any]:
    """Every tool seen, busiest first (ties by name)."""
    by_tool: defaultdict[str, list[RequestEntry]] = defaultdict(list)
    for e in entries:
        by_tool[e.tool].append(e)
    tools = sorted((tool_figures(t, es) for t, es in by_tool.items()), key=lambda f: (-f["totalCalls"], f["tool"]))
    return {"totalTools": len(tools), "totalCalls": sum(f["totalCalls"] for f in tools), "tools": tools}


def detail(tool: str, entries: Iterable[RequestEntry]) -> dict[str, Any]:
    """One tool's figures plus p95 latency, denials by reason and the top 10 keys by calls. A tool with
    no entries gets the same shape with zeros."""
    mine = [e for e in entries if e.tool == tool]
    reasons = Counter(e.deny_reason for e in mine if e.deny_reason is not None)
    calls: Counter[str] = Counter()
    credits: Counter[str] = Counter()
    for e in mine:
        if e.key is not None:  # calls without a valid key have no consumer to name
            calls[e.key] += 1
            credits[e.key] += e.credits
    top = sorted(calls, key=lambda k: (-calls[k], -credits[k], k))[:TOP_CONSUMERS]
    return {
        **tool_figures(tool, mine),
        "p95DurationMs": p95([e.duration_ms for e in mine]),
        "denyReasons": dict(reasons.most_common()),
        "topConsumers": [{"key": k, "calls": calls[k], "credits": credits[k]} for k in top],
    }
