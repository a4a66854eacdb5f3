"""Reports: overview (docs/analytics-overview.md)."""

from __future__ import annotations

from typing import Any

from paygate.analytics.engine import Report, ReportParams
from paygate.analytics.facts import Facts
from paygate.analytics.shaping import allocated, percent, status_of


def system_overview(f: Facts, _: ReportParams) -> dict[str, Any]:
    states = [status_of(k, f.now) for k in f.all_keys()]
    live = f.live_keys()
    spent = sum(k.total_spent for k in live)
    given = sum(allocated(k) for k in live)
    totals = f.totals()
    return {
        "keys": {
            "total": len(states),
            "active": states.count("active"),
            "revoked": states.count("revoked"),
            "suspended": states.count("suspended"),
            "expired": states.count("expired"),
        },
        "credits": {
            "totalAllocated": given,
            "totalSpent": spent,
            "totalRemaining": sum(k.credits for k in live),
            "utilizationPercent": percent(spent, given),
        },
        "activity": {"totalCalls": totals.calls, "uniqueTools": len(f.rollup("tool"))},
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "system-overview",
        system_overview,
        "Keys by status, credits allocated / spent / remaining, calls and tools used in the range.",
    ),
)
