"""Key-state reports: key-health-overview, key-status, key-portfolio, key-age, key-churn
(docs/analytics-overview.md). Keys as they are now; `since` / `until` pick the keys created in the range."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from paygate.analytics.facts import Facts
from paygate.analytics.reports.overview_params import (
    DAY_SECONDS,
    KeyFilterParams,
    KeySelectParams,
    cohort,
    hours_until,
    is_live,
)
from paygate.analytics.shaping import allocated, key_label, percent, status_of
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time

STATUSES = ("active", "suspended", "revoked", "expired")
LOW_CREDITS = 10
SOON_SECONDS = 7 * DAY_SECONDS
WARNING_UTILIZATION = 75.0


class KeyAgeParams(KeyFilterParams):
    limit: int = Field(default=10, ge=1, le=10_000)


def _expires_soon(k: KeyRecord, now: float) -> bool:
    return k.expires_at is not None and now < k.expires_at <= now + SOON_SECONDS


def status_counts(keys: list[KeyRecord], now: float) -> dict[str, int]:
    states = [status_of(k, now) for k in keys]
    return {"total": len(states), **{s: states.count(s) for s in STATUSES}}


def key_health_overview(f: Facts, p: KeyFilterParams) -> dict[str, Any]:
    rows = []
    for k in (k for k in cohort(f, p) if is_live(k)):
        utilization = percent(k.total_spent, allocated(k))
        status = "critical" if k.credits <= 0 else "warning" if utilization >= WARNING_UTILIZATION else "healthy"
        rows.append(
            {
                **key_label(k),
                "credits": k.credits,
                "totalSpent": k.total_spent,
                "totalCalls": k.total_calls,
                "utilizationPercent": utilization,
                "status": status,
            }
        )
    rows.sort(key=lambda r: (r["credits"], r["name"], r["key"]))
    spread = {s: sum(1 for r in rows if r["status"] == s) for s in ("healthy", "warning", "critical")}
    return {
        "keys": rows[: p.limit],
        "summary": {"totalKeys": len(rows), "healthDistribution": spread},
        **f.window.echo(),
    }


def key_status(f: Facts, p: KeyFilterParams) -> dict[str, Any]:
    keys = cohort(f, p)
    attention = []
    for k in keys:
        if status_of(k, f.now) != "active":
            continue
        if k.credits <= LOW_CREDITS:
            attention.append(
                {"keyName": k.name, "key": k.masked, "issue": "low_credits", "detail": f"{k.credits} credits remaining"}
            )
        if _expires_soon(k, f.now):
            assert k.expires_at is not None
            hours = math.ceil((k.expires_at - f.now) / 3600)
            attention.append(
                {"keyName": k.name, "key": k.masked, "issue": "expiring_soon", "detail": f"Expires in {hours} hours"}
            )
    attention.sort(key=lambda a: (a["keyName"], a["key"], a["issue"]))
    return {
        "counts": status_counts(keys, f.now),
        "needsAttention": attention[: p.limit],
        "totalNeedingAttention": len(attention),
        **f.window.echo(),
    }


def _age_days(k: KeyRecord, now: float) -> float:
    return round(max(0.0, now - k.created_at) / DAY_SECONDS, 1)


def key_portfolio(f: Facts, p: KeyFilterParams) -> dict[str, Any]:
    keys = cohort(f, p)
    now = f.now
    states = [status_of(k, now) for k in keys]
    held = [k for k in keys if k.active]  # not revoked
    ratios = [k.total_spent / allocated(k) for k in held if allocated(k) > 0]
    live = [k for k in keys if is_live(k)]
    stale = sorted((k for k in live if k.total_calls == 0), key=lambda k: (k.created_at, k.name, k.masked))
    soon = sorted((k for k in live if _expires_soon(k, now)), key=lambda k: (k.expires_at, k.name, k.masked))
    ages = [max(0.0, now - k.created_at) / DAY_SECONDS for k in held]
    spaces: dict[str, dict[str, Any]] = {}
    for k, state in zip(keys, states, strict=True):
        row = spaces.setdefault(k.namespace, {"namespace": k.namespace, "total": 0, **dict.fromkeys(STATUSES, 0)})
        row["total"] += 1
        row[state] += 1
    return {
        "summary": {
            "totalKeys": len(keys),
            "activeKeys": states.count("active"),
            "inactiveKeys": states.count("revoked") + states.count("expired"),
            "suspendedKeys": states.count("suspended"),
            "averageCreditUtilization": round(sum(ratios) / len(ratios), 4) if ratios else 0.0,
        },
        "staleKeys": [
            {**key_label(k), "createdAt": iso_time(k.created_at), "credits": k.credits, "ageDays": _age_days(k, now)}
            for k in stale[: p.limit]
        ],
        "expiringSoon": [
            {
                **key_label(k),
                "expiresAt": iso_time(k.expires_at),
                "hoursRemaining": hours_until(k.expires_at or 0.0, now),
                "credits": k.credits,
            }
            for k in soon[: p.limit]
        ],
        "ageDistribution": {
            "averageAgeDays": round(sum(ages) / len(ages), 1) if ages else None,
            "oldestAgeDays": round(max(ages), 1) if ages else None,
            "newestAgeDays": round(min(ages), 1) if ages else None,
        },
        "byNamespace": sorted(spaces.values(), key=lambda r: r["namespace"]),
        **f.window.echo(),
    }


def _age_row(k: KeyRecord, now: float) -> dict[str, Any]:
    hours = round(max(0.0, now - k.created_at) / 3600, 1)
    return {"keyName": k.name, "key": k.masked, "ageHours": hours, "createdAt": iso_time(k.created_at)}


def key_age(f: Facts, p: KeyAgeParams) -> dict[str, Any]:
    now = f.now
    keys = [k for k in cohort(f, p) if is_live(k)]  # oldest first
    ages = [max(0.0, now - k.created_at) for k in keys]
    spread = {"last24h": 0, "last7d": 0, "last30d": 0, "older": 0}
    for age in ages:
        bucket = (
            "last24h"
            if age < DAY_SECONDS
            else "last7d"
            if age < 7 * DAY_SECONDS
            else "last30d"
            if age < 30 * DAY_SECONDS
            else "older"
        )
        spread[bucket] += 1
    newest_first = sorted(keys, key=lambda k: (-k.created_at, k.name, k.masked))
    oldest = min(keys, key=lambda k: (k.created_at, k.name, k.masked), default=None)
    return {
        "summary": {
            "totalKeys": len(keys),
            "avgAgeHours": round(sum(ages) / len(ages) / 3600, 1) if ages else None,
            "oldestKey": None if oldest is None else _age_row(oldest, now),
            "newestKey": _age_row(newest_first[0], now) if newest_first else None,
        },
        "distribution": spread,
        "recentlyCreated": [_age_row(k, now) for k in newest_first[: p.limit]],
        **f.window.echo(),
    }


def key_churn(f: Facts, p: KeySelectParams) -> dict[str, Any]:
    keys = cohort(f, p)
    counts = status_counts(keys, f.now)
    active = [k for k in keys if status_of(k, f.now) == "active"]
    churn = percent(counts["revoked"], counts["total"])
    return {
        "summary": {
            "totalKeys": counts["total"],
            "activeKeys": counts["active"],
            "revokedKeys": counts["revoked"],
            "suspendedKeys": counts["suspended"],
            "expiredKeys": counts["expired"],
            "neverUsedKeys": sum(1 for k in active if k.total_calls == 0),
            "churnRate": churn,
            "retentionRate": round(100 - churn, 2) if keys else 0.0,
            "avgCreditsPerKey": round(sum(k.credits for k in active) / len(active), 2) if active else 0.0,
        },
        **f.window.echo(),
    }
