"""`/admin/notifications` and `/admin/system-health`: what needs attention now (docs/analytics-overview.md).

Both judge recent behaviour over the last 24 hours of the range (ending at `until`, else now): a rate
over all history would keep raising yesterday's trouble.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from paygate.analytics.facts import Facts
from paygate.analytics.reports.overview_params import SEVERITY_ORDER, SeverityParams, filtered, hours_until
from paygate.analytics.shaping import by_key, half_up, key_label, percent
from paygate.analytics.window import Window
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.store.rollups import RollupRow

RECENT_HOURS = 24
EXPIRY_CRITICAL_HOURS = 24
EXPIRY_WARNING_HOURS = 7 * 24
DEPLETION_CRITICAL_HOURS = 6
DEPLETION_WARNING_HOURS = 24
ERROR_MIN_CALLS = 10
ERROR_CRITICAL, ERROR_WARNING = 0.5, 0.25
RATE_PRESSURE = 0.9
LOW_CREDITS = 10


def recent(f: Facts) -> Window:
    return f.window.last_hours(RECENT_HOURS)


def _note(k: KeyRecord, severity: str, category: str, message: str, details: dict[str, Any] | None) -> dict[str, Any]:
    label = key_label(k)
    out: dict[str, Any] = {
        "severity": severity,
        "category": category,
        "message": message,
        "key": label["key"],
        "keyName": label["name"],
    }
    if details is not None:
        out["details"] = details
    return out


def _key_notes(f: Facts, k: KeyRecord, calls: RollupRow | None) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = []
    now = f.now
    if k.suspended:
        notes.append(_note(k, "info", "key_suspended", "Key is suspended", None))
    if k.expires_at is not None:
        if k.expires_at <= now:
            notes.append(_note(k, "critical", "key_expired", "Key has expired", {"expiresAt": iso_time(k.expires_at)}))
        elif k.expires_at - now < EXPIRY_WARNING_HOURS * 3600:
            hours = (k.expires_at - now) / 3600
            severity = "critical" if hours < EXPIRY_CRITICAL_HOURS else "warning"
            details = {"expiresAt": iso_time(k.expires_at), "hoursRemaining": hours_until(k.expires_at, now)}
            message = f"Key expires within {math.ceil(hours)} hours"
            notes.append(_note(k, severity, "key_expiring_soon", message, details))
    if k.credits <= 0:
        notes.append(_note(k, "critical", "zero_credits", "Key has zero credits remaining", None))
    elif calls is not None and calls.credits > 0:
        per_hour = calls.credits / RECENT_HOURS
        left = k.credits / per_hour
        if left < DEPLETION_WARNING_HOURS:
            severity = "critical" if left < DEPLETION_CRITICAL_HOURS else "warning"
            details = {
                "credits": k.credits,
                "creditsPerHour": round(per_hour, 2),
                "estimatedHoursRemaining": round(left, 1),
            }
            message = f"Credits will deplete in ~{half_up(left)} hours at current rate"
            notes.append(_note(k, severity, "credits_depleting", message, details))
    if calls is not None and calls.calls >= ERROR_MIN_CALLS:
        errors = calls.denied + calls.failed
        rate = Fraction(errors, calls.calls)
        if rate >= ERROR_WARNING:
            severity = "critical" if rate >= ERROR_CRITICAL else "warning"
            details = {
                "calls": calls.calls,
                "denied": calls.denied,
                "failed": calls.failed,
                "errorRate": percent(errors, calls.calls),
            }
            message = f"{percent(errors, calls.calls)}% of calls denied or failed in the last {RECENT_HOURS} hours"
            notes.append(_note(k, severity, "high_error_rate", message, details))
    if k.active and not k.suspended:
        rl = f.reports().rate_limits(k, now)["global"]
        if rl["limit"] > 0 and rl["used"] >= RATE_PRESSURE * rl["limit"]:
            details = {"used": rl["used"], "limit": rl["limit"], "utilizationPercent": percent(rl["used"], rl["limit"])}
            message = f"Rate limit nearly exhausted ({rl['used']}/{rl['limit']} this minute)"
            notes.append(_note(k, "warning", "rate_limit_pressure", message, details))
    return notes


def notification_list(f: Facts, keys: list[KeyRecord]) -> list[dict[str, Any]]:
    """Every notification about `keys` (revoked ones are skipped), most severe first."""
    calls = by_key(f.rollup("key", window=recent(f)))
    notes = [n for k in keys if k.active for n in _key_notes(f, k, calls.get(k.key_hash))]
    notes.sort(key=lambda n: (SEVERITY_ORDER[n["severity"]], n["keyName"], n["key"], n["category"]))
    return notes


def severity_counts(notes: list[dict[str, Any]]) -> dict[str, int]:
    return {s: sum(1 for n in notes if n["severity"] == s) for s in SEVERITY_ORDER}


def notifications(f: Facts, p: SeverityParams) -> dict[str, Any]:
    notes = notification_list(f, filtered(f, f.all_keys(), p))
    if p.severity is not None:
        notes = [n for n in notes if n["severity"] == p.severity]
    return {"total": len(notes), **severity_counts(notes), "notifications": notes[: p.limit]}


def _key_health(keys: list[KeyRecord], now: float) -> dict[str, Any]:
    if not keys:
        return {"score": 100, "weight": 0.4, "detail": "No keys"}
    problems = {"revoked": 0, "suspended": 0, "expired": 0, "low credits": 0}
    for k in keys:  # each key counted once, by its first problem
        if not k.active:
            problems["revoked"] += 1
        elif k.suspended:
            problems["suspended"] += 1
        elif k.expires_at is not None and k.expires_at <= now:
            problems["expired"] += 1
        elif k.credits <= LOW_CREDITS:
            problems["low credits"] += 1
    bad = sum(problems.values())
    issues = [f"{n} {name}" for name, n in problems.items() if n]
    detail = ", ".join(issues) if issues else f"{len(keys)} active keys"
    return {"score": max(0, half_up(100 - Fraction(100 * bad, len(keys)))), "weight": 0.4, "detail": detail}


def _error_rate(calls: RollupRow) -> dict[str, Any]:
    if not calls.calls:
        return {"score": 100, "weight": 0.35, "detail": f"No calls in the last {RECENT_HOURS} hours"}
    errors = calls.denied + calls.failed
    rate = Fraction(errors, calls.calls)
    detail = f"{half_up(rate * 100)}% error rate ({errors}/{calls.calls}: {calls.denied} denied, {calls.failed} failed)"
    return {"score": max(0, half_up(100 - rate * 200)), "weight": 0.35, "detail": detail}


def _credit_utilization(live: list[KeyRecord]) -> dict[str, Any]:
    given = sum(k.credits + k.total_spent for k in live)
    if not given:
        return {"score": 100, "weight": 0.25, "detail": "No credits tracked"}
    spent = sum(k.total_spent for k in live)
    used = Fraction(spent, given)
    if used > Fraction(9, 10):
        score = half_up(50 - (used - Fraction(9, 10)) * 500)
    elif used > Fraction(8, 10):
        score = half_up(80 - (used - Fraction(8, 10)) * 300)
    else:
        score = 100
    detail = f"{half_up(used * 100)}% utilized ({spent}/{given} credits)"
    return {"score": max(0, min(100, score)), "weight": 0.25, "detail": detail}


def level_of(score: int) -> str:
    if score >= 80:
        return "healthy"
    if score >= 60:
        return "good"
    return "warning" if score >= 40 else "critical"


def system_health(f: Facts, _: Any) -> dict[str, Any]:
    components = {
        "keyHealth": _key_health(f.all_keys(), f.now),
        "errorRate": _error_rate(f.totals(window=recent(f))),
        "creditUtilization": _credit_utilization(f.live_keys()),
    }
    score = half_up(sum(c["score"] * Fraction(str(c["weight"])) for c in components.values()))
    return {"score": score, "level": level_of(score), "components": components, **f.window.echo()}
