"""Reports: overview (docs/analytics-overview.md). The family's reports live in `overview_*.py`; this module
holds the fleet summaries (system-overview, dashboard) and the family's `REPORTS`."""

from __future__ import annotations

from typing import Any

from paygate.analytics.engine import LimitParams, Report, ReportParams
from paygate.analytics.facts import Facts
from paygate.analytics.reports import overview_governance as gov
from paygate.analytics.reports import overview_keys as keys
from paygate.analytics.reports.overview_alerts import notification_list, notifications, severity_counts, system_health
from paygate.analytics.reports.overview_params import KeyFilterParams, KeySelectParams, SeverityParams
from paygate.analytics.reports.overview_usage import AnalyticsParams, analytics
from paygate.analytics.shaping import allocated, by_key, key_label, percent, status_of
from paygate.core.values import iso_time
from paygate.store.rollups import ALLOWED


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


def dashboard(f: Facts, p: LimitParams) -> dict[str, Any]:
    overview = system_overview(f, p)
    totals = f.totals()
    reasons = [r for r in f.rollup("reason") if r.denied and r.group[0] != ALLOWED]
    known = f.key_by_hash()
    consumers = []
    for key_hash, row in by_key(f.rollup("key")).items():
        record = None if key_hash is None else known.get(key_hash)
        if record is not None:
            consumers.append({**key_label(record), "calls": row.calls, "credits": row.credits, "denied": row.denied})
    consumers.sort(key=lambda c: (-c["credits"], -c["calls"], c["name"], c["key"]))
    tools: list[dict[str, Any]] = [
        {"tool": r.group[0], "calls": r.calls, "credits": r.credits, "denied": r.denied} for r in f.rollup("tool")
    ]
    tools.sort(key=lambda t: (-t["calls"], str(t["tool"])))
    uptime = max(0.0, f.now - f.started_at)
    credits = overview["credits"]
    return {
        "keys": overview["keys"],
        "credits": {k: credits[k] for k in ("totalAllocated", "totalSpent", "totalRemaining")},
        "usage": {
            "totalCalls": totals.calls,
            "totalAllowed": totals.allowed,
            "totalDenied": totals.denied,
            "totalFailed": totals.failed,
            "totalCreditsSpent": totals.credits,
            "denyReasons": [
                {"reason": r.group[0], "count": r.denied}
                for r in sorted(reasons, key=lambda r: (-r.denied, str(r.group[0])))
            ],
        },
        "topConsumers": consumers[: p.limit],
        "topTools": tools[: p.limit],
        "notifications": severity_counts(notification_list(f, f.all_keys())),
        "uptime": {
            "startedAt": iso_time(f.started_at),
            "uptimeSeconds": int(uptime),
            "uptimeHours": round(uptime / 3600, 2),
        },
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "analytics",
        analytics,
        "Usage over time (hourly or daily), per tool, top consumers, and the change from the period before.",
        AnalyticsParams,
        table="timeSeries",
        path="/analytics",
    ),
    Report(
        "system-overview",
        system_overview,
        "Keys by status, credits allocated / spent / remaining, calls and tools used in the range.",
    ),
    Report(
        "dashboard",
        dashboard,
        "Keys, credits, usage with deny reasons, top consumers and tools, notification counts, uptime.",
        LimitParams,
        table="topConsumers",
    ),
    Report(
        "notifications",
        notifications,
        "Keys that need attention: expiry, zero or depleting credits, errors, rate-limit pressure, suspension.",
        SeverityParams,
        table="notifications",
    ),
    Report(
        "system-health",
        system_health,
        "A 0-100 health score from key health, the recent error rate and credit utilization.",
    ),
    Report(
        "key-health-overview",
        keys.key_health_overview,
        "Per-key health (critical / warning / healthy) of keys that can call, most depleted first.",
        KeyFilterParams,
        table="keys",
    ),
    Report(
        "key-status",
        keys.key_status,
        "Keys by status, and active keys with low credits or near expiry.",
        KeyFilterParams,
        table="needsAttention",
    ),
    Report(
        "key-portfolio",
        keys.key_portfolio,
        "Portfolio health: status counts, credit utilization, stale and expiring keys, ages, namespaces.",
        KeyFilterParams,
        table="byNamespace",
    ),
    Report(
        "lifecycle",
        gov.lifecycle,
        "Key lifecycle events (created, revoked, suspended, resumed, rotated, cloned) by day, and keys at risk.",
        gov.LifecycleParams,
        table="trends",
    ),
    Report(
        "key-age",
        keys.key_age,
        "Ages of keys that can call: average, oldest, newest, age buckets, recently created.",
        keys.KeyAgeParams,
        table="recentlyCreated",
    ),
    Report(
        "key-churn",
        keys.key_churn,
        "Churn: keys revoked, suspended, never used; churn and retention rates.",
        KeySelectParams,
        table="summary",
    ),
    Report(
        "security",
        gov.security,
        "A 0-100 security score and findings over keys' effective policies (IP, ACL, quota, limits, expiry).",
        SeverityParams,
        table="findings",
    ),
    Report(
        "compliance",
        gov.compliance,
        "Compliance summary: expiry, ACL, IP and spending-limit coverage, audit trail, score and advice.",
        KeySelectParams,
    ),
    Report(
        "audit-summary",
        gov.audit_summary,
        "Audit events by type and actor, recent counts, the newest events.",
        gov.AuditSummaryParams,
        table="eventsByType",
    ),
)
