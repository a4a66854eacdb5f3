"""Governance reports: lifecycle, security, compliance, audit-summary (docs/analytics-overview.md).

Audit counts are exact (the store counts them); lists built from audit entries read the newest
`AUDIT_READ_CAP` entries of the range.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Any

from pydantic import Field

from paygate.analytics.engine import ReportParams
from paygate.analytics.facts import Facts
from paygate.analytics.reports.overview_params import (
    DAY_SECONDS,
    SEVERITY_ORDER,
    KeySelectParams,
    SeverityParams,
    cohort,
    hour_window,
)
from paygate.analytics.shaping import half_up
from paygate.analytics.window import Window, iso_day
from paygate.audit.service import message_of
from paygate.core.policy import EffectivePolicy, has_limits
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.store.audit_log import AuditFilter

LIFECYCLE = {
    "key.created": "created",
    "key.revoked": "revoked",
    "key.suspended": "suspended",
    "key.resumed": "resumed",
    "key.rotated": "rotated",
    "key.cloned": "cloned",
}
RISK_ORDER = {"expired": 0, "expiring_soon": 1, "zero_credits": 2}
HIGH_BALANCE = 10_000
TOP_ACTORS = 10


class LifecycleParams(ReportParams):
    limit: int = Field(default=100, ge=1, le=10_000, description="rows in atRisk")


class AuditSummaryParams(ReportParams):
    limit: int = Field(default=20, ge=1, le=1000, description="rows in recentEvents")


def _count(f: Facts, w: Window, *types: str) -> int:
    return f.store.audit.count(AuditFilter(tuple(types), None, w.since, w.until))


def _at_risk(f: Facts) -> list[dict[str, Any]]:
    out = []
    now = f.now
    for k in f.live_keys():
        base = {"key": k.masked, "name": k.name}
        if k.expires_at is not None and k.expires_at <= now:
            out.append({**base, "risk": "expired", "details": {"expiresAt": iso_time(k.expires_at)}})
        elif k.expires_at is not None and k.expires_at - now <= 7 * DAY_SECONDS:
            days = round((k.expires_at - now) / DAY_SECONDS, 2)
            details = {"expiresAt": iso_time(k.expires_at), "daysRemaining": days}
            out.append({**base, "risk": "expiring_soon", "details": details})
        if k.credits <= 0:
            out.append({**base, "risk": "zero_credits", "details": {"credits": k.credits}})
    out.sort(key=lambda r: (RISK_ORDER[str(r["risk"])], str(r["name"]), str(r["key"])))
    return out


def lifecycle(f: Facts, p: LifecycleParams) -> dict[str, Any]:
    w = hour_window(f)
    entries = f.audit(*LIFECYCLE, window=w)
    days: dict[int, dict[str, Any]] = {}
    for e in entries:
        day = int(e.timestamp // DAY_SECONDS)
        row = days.setdefault(day, {"date": iso_day(day), **dict.fromkeys(LIFECYCLE.values(), 0)})
        row[LIFECYCLE[e.type]] += 1
    # a revoked key's lifetime: from its creation to its key.revoked event (records keep no revocation time)
    by_masked: dict[str, list[KeyRecord]] = {}
    for k in f.all_keys():
        if not k.active:
            by_masked.setdefault(k.masked, []).append(k)
    lifetimes = []
    for e in entries:
        holders = by_masked.get(str(e.data.get("keyMasked")), []) if e.type == "key.revoked" else []
        if len(holders) == 1:  # two revoked keys with one masked form cannot be told apart
            lifetimes.append(max(0.0, e.timestamp - holders[0].created_at) / 3600)
    return {
        "events": {name: _count(f, w, t) for t, name in LIFECYCLE.items()},
        "trends": [days[d] for d in sorted(days)],
        "averageLifetimeHours": round(sum(lifetimes) / len(lifetimes), 1) if lifetimes else None,
        "atRisk": _at_risk(f)[: p.limit],
        **f.window.echo(),
    }


def _policies(f: Facts, keys: list[KeyRecord]) -> list[tuple[KeyRecord, EffectivePolicy]]:
    return [(k, f.reports().policy(k)) for k in keys]


# type, severity, weight in the security score (they add up to 100), description
SECURITY_CHECKS: tuple[tuple[str, str, int, str], ...] = (
    ("no_ip_allowlist", "warning", 25, "Keys without IP allowlists can be used from any IP address"),
    ("no_acl_restriction", "info", 15, "Keys without ACL restrictions can access all tools"),
    ("no_quota", "info", 10, "Keys without quotas can make unlimited calls per day and month"),
    ("no_spending_limit", "info", 15, "Keys without spending limits can spend their whole balance"),
    ("no_expiry", "info", 15, "Keys without an expiry date stay valid until revoked"),
    ("high_credit_balance", "warning", 20, f"Keys with {HIGH_BALANCE}+ credits are high-value targets if compromised"),
)


def security_gaps(k: KeyRecord, policy: EffectivePolicy) -> dict[str, bool]:
    """Which findings a key has, judged on its effective policy (its group's and plan's settings count)."""
    return {
        "no_ip_allowlist": not policy.ip_allowlist,
        "no_acl_restriction": not policy.allowed_tools and not policy.denied_tools,
        "no_quota": not has_limits(policy.quota),
        "no_spending_limit": policy.spending_limit <= 0,
        "no_expiry": k.expires_at is None,
        "high_credit_balance": k.credits >= HIGH_BALANCE,
    }


def security(f: Facts, p: SeverityParams) -> dict[str, Any]:
    scanned = _policies(f, [k for k in cohort(f, p) if k.active])
    gaps = [(k, security_gaps(k, pol)) for k, pol in scanned]
    findings = []
    penalty = Fraction(0)
    for kind, severity, weight, description in SECURITY_CHECKS:
        names = sorted(k.name for k, g in gaps if g[kind])
        if scanned:
            penalty += Fraction(weight * len(names), len(scanned))
        if names and (p.severity is None or p.severity == severity):
            findings.append(
                {
                    "type": kind,
                    "severity": severity,
                    "keys": names[: p.limit],
                    "count": len(names),
                    "description": description,
                }
            )
    findings.sort(key=lambda x: (SEVERITY_ORDER[str(x["severity"])], str(x["type"])))
    return {
        "score": max(0, half_up(100 - penalty)),
        "summary": {"totalKeys": len(scanned), "totalFindings": sum(x["count"] for x in findings)},
        "findings": findings,
        **f.window.echo(),
    }


def compliance(f: Facts, p: KeySelectParams) -> dict[str, Any]:
    scanned = _policies(f, [k for k in cohort(f, p) if k.active])
    n = len(scanned)
    expiry = sum(1 for k, _ in scanned if k.expires_at is not None)
    acl = sum(1 for _, pol in scanned if pol.allowed_tools or pol.denied_tools)
    ip = sum(1 for _, pol in scanned if pol.ip_allowlist)
    limit = sum(1 for _, pol in scanned if pol.spending_limit > 0)
    events = _count(f, hour_window(f))
    keys_called = sum(1 for r in f.rollup("key") if r.group[0] is not None)

    def share(have: int) -> Fraction:
        return Fraction(have, n) if n else Fraction(1)  # no keys: none is out of policy

    score = half_up(25 * share(expiry) + 25 * share(acl) + 20 * share(ip) + 15 * share(limit) + (15 if events else 0))
    advice = []
    if n - expiry:
        advice.append(f"Set expiry dates on {n - expiry} key(s) without time-limited access")
    if n - acl:
        advice.append(f"Add tool ACL restrictions to {n - acl} key(s) with unrestricted tool access")
    if n - ip:
        advice.append(f"Add IP allowlists to {n - ip} key(s) usable from any IP address")
    if n - limit:
        advice.append(f"Set spending limits on {n - limit} key(s) without one")
    if not events:
        advice.append("No audit events in the range: check the audit retention (auditMaxEntries, auditMaxAgeDays)")
    return {
        "keyGovernance": {"totalKeys": n, "keysWithExpiry": expiry, "keysWithoutExpiry": n - expiry},
        "accessControl": {
            "keysWithAcl": acl,
            "keysWithoutAcl": n - acl,
            "keysWithIpRestriction": ip,
            "keysWithoutIpRestriction": n - ip,
            "keysWithSpendingLimit": limit,
            "keysWithoutSpendingLimit": n - limit,
        },
        "auditTrail": {"totalEvents": events, "uniqueTools": len(f.rollup("tool")), "uniqueKeys": keys_called},
        "overallScore": score,
        "recommendations": advice,
        **f.window.echo(),
    }


def audit_summary(f: Facts, p: AuditSummaryParams) -> dict[str, Any]:
    w = hour_window(f)
    end = w.end
    entries = f.audit(window=w)
    total = _count(f, w)
    stats = f.store.audit.stats(TOP_ACTORS)
    by_type = [(t, _count(f, w, t)) for t in stats.by_type]
    whole = w.since is None and w.until is None
    if whole:
        actors = list(stats.by_actor.items())  # exact over the whole log
    else:
        actors = sorted(Counter(e.actor for e in entries).items(), key=lambda a: (-a[1], a[0]))[:TOP_ACTORS]
    # oldest/newest by time, not by id: ids follow insertion, which restored rows or skewed clocks reorder
    stamps = [e.timestamp for e in entries]
    oldest, newest = (stats.oldest, stats.newest) if whole else (min(stamps, default=None), max(stamps, default=None))

    def last(seconds: float) -> int:
        since = end - seconds if w.since is None else max(w.since, end - seconds)
        return _count(f, Window(f.now, since, end))

    return {
        "summary": {
            "totalEvents": total,
            "eventsLastHour": last(3600),
            "eventsLast24h": last(DAY_SECONDS),
            "oldestEvent": iso_time(oldest),
            "newestEvent": iso_time(newest),
        },
        "eventsByType": [{"type": t, "count": c} for t, c in sorted(by_type, key=lambda x: (-x[1], x[0])) if c],
        "topActors": [{"actor": a, "count": c} for a, c in actors],
        "recentEvents": [
            {
                "id": e.id,
                "timestamp": iso_time(e.timestamp),
                "type": e.type,
                "actor": e.actor,
                "message": message_of(e.type, e.data),
            }
            for e in entries[: p.limit]
        ],
        **f.window.echo(),
    }
