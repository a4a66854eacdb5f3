"""Composite views of one key: health score, a comparison row, the dashboard.

Health (the reference's weights): balance 30% (hours until the credits run out at
the last 24 hours' burn rate; a week or more scores 100), quota 25% (highest
utilization of a daily or monthly limit), rate limit 20% (use of the current
window), error rate 25% (denied / all calls). A revoked or expired key scores 0;
a suspended key at most 49 (it cannot be used until resumed).
"""

from __future__ import annotations

from typing import Any

from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.reports.activity import ActivityLog, timeline
from paygate.reports.keys import KeyReports, key_status, quota_utilization

WEIGHTS = {"balance": 0.30, "quota": 0.25, "rateLimit": 0.20, "errorRate": 0.25}
LEVELS = ((90, "healthy"), (75, "good"), (50, "caution"), (25, "warning"))
FULL_BALANCE_HOURS = 168.0  # a week of credits left at the current burn rate scores 100
EXPIRING_SOON = 7 * 86400
RAPID_DEPLETION_HOURS = 24.0
SUSPENDED_CAP = 49


def level(score: int) -> str:
    for floor, name in LEVELS:
        if score >= floor:
            return name
    return "critical"


def _pct(fraction: float) -> int:
    return max(0, min(100, round(fraction * 100)))


def health(reports: KeyReports, record: KeyRecord, now: float) -> dict[str, Any]:
    velocity = reports.velocity(record, 24, now)["velocity"]
    hours_left: float | None = velocity["estimatedHoursRemaining"]
    if record.credits <= 0:
        balance = 0
    elif hours_left is None:
        balance = 100
    else:
        balance = _pct(min(hours_left / FULL_BALANCE_HOURS, 1.0))
    quota = _pct(1 - min(quota_utilization(reports.quota(record)), 1.0))
    window = reports.rate_limits(record, now)["global"]
    rate = _pct(1 - window["used"] / window["limit"]) if window["limit"] else 100
    events = reports.events(record)
    denied = sum(1 for e in events if not e.allowed)
    errors = _pct(1 - denied / len(events)) if events else 100
    scores = {"balance": balance, "quota": quota, "rateLimit": rate, "errorRate": errors}

    status = key_status(record, now)
    score = round(sum(scores[name] * weight for name, weight in WEIGHTS.items()))
    if status in ("revoked", "expired"):
        score = 0
    elif status == "suspended":
        score = min(score, SUSPENDED_CAP)
    return {
        **reports.identity(record),
        "score": score,
        "status": level(score),
        "keyStatus": status,
        "issues": _issues(record, status, hours_left, now),
        "components": {
            name: {"score": scores[name], "risk": level(scores[name]), "weight": weight}
            for name, weight in WEIGHTS.items()
        },
    }


def _issues(record: KeyRecord, status: str, hours_left: float | None, now: float) -> list[str]:
    issues = {"revoked": ["Key is revoked"], "expired": ["Key has expired"], "suspended": ["Key is suspended"]}.get(
        status, []
    )
    if status != "expired" and record.expires_at is not None and record.expires_at - now < EXPIRING_SOON:
        issues.append("Key expires within 24 hours" if record.expires_at - now < 86400 else "Key expires within 7 days")
    if record.credits <= 0:
        issues.append("Zero credits")
    elif hours_left is not None and hours_left < RAPID_DEPLETION_HOURS:
        issues.append("Credits depleting rapidly")
    return issues


def compare_row(reports: KeyReports, record: KeyRecord, now: float) -> dict[str, Any]:
    events = reports.events(record)
    allowed = sum(1 for e in events if e.allowed)
    velocity = reports.velocity(record, 24, now)["velocity"]
    window = reports.rate_limits(record, now)["global"]
    return {
        **reports.identity(record),
        "status": key_status(record, now),
        "credits": {"current": record.credits, "totalSpent": record.total_spent},
        "usage": {"totalCalls": len(events), "totalAllowed": allowed, "totalDenied": len(events) - allowed},
        "velocity": {k: velocity[k] for k in ("creditsPerHour", "creditsPerDay", "estimatedHoursRemaining")},
        "rateLimit": {k: window[k] for k in ("used", "limit", "remaining")},
        "metadata": {
            "namespace": record.namespace,
            "group": record.group_id,
            "createdAt": iso_time(record.created_at),
            "tags": record.tags,
        },
    }


def dashboard(reports: KeyReports, log: ActivityLog, record: KeyRecord, now: float) -> dict[str, Any]:
    events = reports.events(record)
    allowed = [e for e in events if e.allowed]
    score = health(reports, record, now)
    velocity = reports.velocity(record, 24, now)["velocity"]
    rates = reports.rate_limits(record, now)
    quota = reports.quota(record)
    return {
        **reports.identity(record),
        "status": key_status(record, now),
        "namespace": record.namespace,
        "group": record.group_id,
        "tags": record.tags,
        "createdAt": iso_time(record.created_at),
        "lastUsedAt": iso_time(record.last_used_at),
        "expiresAt": iso_time(record.expires_at),
        "balance": {
            "credits": record.credits,
            "totalSpent": record.total_spent,
            "totalAllocated": reports.total_allocated(record),
            "spendingLimit": record.spending_limit or None,
        },
        "health": {"score": score["score"], "status": score["status"], "issues": score["issues"]},
        "velocity": {k: velocity[k] for k in ("creditsPerHour", "creditsPerDay", "estimatedDepletionDate")},
        "rateLimits": {k: v for k, v in rates.items() if k in ("global", "perTool")},
        "quotas": {"source": quota["quotaSource"], "daily": quota["daily"], "monthly": quota["monthly"]},
        "usage": {
            "totalCalls": len(events),
            "totalAllowed": len(allowed),
            "totalDenied": len(events) - len(allowed),
            "totalCredits": sum(e.credits for e in allowed),
        },
        "recentActivity": timeline(reports, log, record, None, 10)["events"],
    }
