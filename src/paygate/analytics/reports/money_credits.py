"""Reports: money, key balances (docs/analytics-money.md): credit flow, efficiency, distribution, utilization,
allocation, waste and burn rate. Balances are the keys' current `credits` and `total_spent` (allocated =
both: what a key holds plus what it spent); the calls these reports count come from the rollups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports.money_common import (
    BURN_LOOKBACK_HOURS,
    CallParams,
    CallScope,
    KeyStateParams,
    RateParams,
    balances,
    earliest_creation,
    hourly_credits,
    rate_hours,
    scoped_keys,
    utilization,
)
from paygate.analytics.reports.money_methods import hours_until, median
from paygate.analytics.shaping import allocated, key_label, percent
from paygate.analytics.window import iso_hour
from paygate.core.records import KeyRecord

BALANCE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-10", 0, 10),
    ("11-50", 11, 50),
    ("51-100", 51, 100),
    ("101-500", 101, 500),
    ("501-1000", 501, 1000),
    ("1001+", 1001, None),
)
ALLOCATION_TIERS: tuple[tuple[str, int, int | None], ...] = (
    ("1-100", 1, 100),
    ("101-500", 101, 500),
    ("501+", 501, None),
)
OVER_PROVISIONED_REMAINING = 0.9  # more than 90% of its credits still unspent
LOW_CREDITS = 10  # at most this many credits left, or at most 10% of the allocation
LOW_REMAINING = 0.1


class EfficiencyParams(KeyStateParams):
    limit: int = Field(default=10, ge=1, le=10_000, description="rows in each list")


def _in(value: int, low: int, high: int | None) -> bool:
    return value >= low and (high is None or value <= high)


def _cohort(f: Facts, p: KeyStateParams) -> list[KeyRecord]:
    return scoped_keys(f, p.namespace, p.group, created_in_range=True)


def credit_flow(f: Facts, p: CallParams) -> dict[str, Any]:
    s = CallScope(f, p)
    totals = balances(s.live_keys())
    t = s.totals()
    spenders = []
    by_hash = f.key_by_hash()
    for label, r in s.spenders(p.limit):
        record = by_hash[str(r.group[0])]
        spenders.append(
            {"keyName": label["name"], "key": label["key"], "creditsSpent": r.credits}
            | {"creditsRefunded": r.refunded, "creditsRemaining": record.credits, "callCount": r.allowed}
        )
    tools = [r for r in s.rollup("tool") if r.allowed]
    tools.sort(key=lambda r: (-r.credits, -r.allowed, str(r.group[0])))
    return {
        "summary": {**totals, "utilizationPct": percent(totals["totalSpent"], totals["totalAllocated"])},
        "period": {"creditsSpent": t.credits, "creditsRefunded": t.refunded, "callCount": t.allowed},
        "topSpenders": spenders,
        "byTool": [
            {"tool": r.group[0], "creditsSpent": r.credits, "creditsRefunded": r.refunded, "callCount": r.allowed}
            for r in tools
        ],
        **f.window.echo(),
    }


def _provision_row(k: KeyRecord) -> dict[str, Any]:
    given = allocated(k)
    return {
        **key_label(k),
        "credits": k.credits,
        "totalAllocated": given,
        "totalSpent": k.total_spent,
        "remainingPercent": percent(k.credits, given),
    }


def credit_efficiency(f: Facts, p: EfficiencyParams) -> dict[str, Any]:
    keys = _cohort(f, p)
    totals = balances(keys)
    over = [k for k in keys if allocated(k) and k.credits / allocated(k) > OVER_PROVISIONED_REMAINING]
    under = [
        k for k in keys if k.total_spent > 0 and (k.credits <= LOW_CREDITS or k.credits / allocated(k) <= LOW_REMAINING)
    ]
    # Most urgent first: the idlest hoards, the emptiest active keys.
    over.sort(key=lambda k: (-k.credits / allocated(k), -k.credits, k.name, k.masked))
    under.sort(key=lambda k: (k.credits / allocated(k), k.credits, k.name, k.masked))
    return {
        "summary": {
            **totals,
            "burnEfficiency": percent(totals["totalSpent"], totals["totalAllocated"]),
            "wasteRatio": percent(totals["totalRemaining"], totals["totalAllocated"]),
            "activeKeys": len(keys),
            "overProvisionedKeys": len(over),
            "underProvisionedKeys": len(under),
        },
        "overProvisioned": [_provision_row(k) for k in over[: p.limit]],
        "underProvisioned": [_provision_row(k) for k in under[: p.limit]],
        **f.window.echo(),
    }


def credit_distribution(f: Facts, p: KeyStateParams) -> dict[str, Any]:
    keys = _cohort(f, p)
    buckets = []
    for name, low, high in BALANCE_BUCKETS:
        inside = [k.credits for k in keys if _in(max(k.credits, 0), low, high)]
        if inside:
            buckets.append({"range": name, "count": len(inside), "totalCredits": sum(inside)})
    balances_ = [k.credits for k in keys]
    return {
        "buckets": buckets,
        "summary": {
            "totalKeys": len(keys),
            "totalCredits": sum(balances_),
            "medianCredits": median(balances_) if keys else None,
        },
        **f.window.echo(),
    }


def utilization_band(record: KeyRecord) -> str:
    """0% (nothing spent), 1-25% … 76-99% (by the exact fraction: 0.3% is in 1-25%), 100% (all spent)."""
    if record.total_spent <= 0:
        return "0%"
    if record.credits <= 0:
        return "100%"
    used = 100 * utilization(record)
    return "1-25%" if used <= 25 else "26-50%" if used <= 50 else "51-75%" if used <= 75 else "76-99%"


UTILIZATION_BANDS = ("0%", "1-25%", "26-50%", "51-75%", "76-99%", "100%")


def credit_utilization(f: Facts, p: KeyStateParams) -> dict[str, Any]:
    keys = _cohort(f, p)
    counts = dict.fromkeys(UTILIZATION_BANDS, 0)
    for k in keys:
        counts[utilization_band(k)] += 1
    totals = balances(keys)
    return {
        "bands": [{"range": b, "count": n, "percentage": percent(n, len(keys))} for b, n in counts.items() if n],
        "summary": {
            "totalAllocated": totals["totalAllocated"],
            "totalSpent": totals["totalSpent"],
            "overallUtilization": percent(totals["totalSpent"], totals["totalAllocated"]),
            "totalKeys": len(keys),
        },
        **f.window.echo(),
    }


def credit_allocation(f: Facts, p: KeyStateParams) -> dict[str, Any]:
    keys = _cohort(f, p)
    totals = balances(keys)
    tiers: list[tuple[str, int, int | None]] = list(ALLOCATION_TIERS)
    if any(allocated(k) <= 0 for k in keys):
        tiers.insert(0, ("0", 0, 0))  # keys never given a credit: shown rather than silently uncounted
    rows = []
    for name, low, high in tiers:
        given = [allocated(k) for k in keys if _in(max(allocated(k), 0), low, high)]
        rows.append(
            {
                "tier": name,
                "count": len(given),
                "totalCredits": sum(given),
                "percentage": percent(sum(given), totals["totalAllocated"]),
            }
        )
    return {
        "tiers": rows,
        "summary": {
            "totalKeys": len(keys),
            **totals,
            "averageAllocation": round(totals["totalAllocated"] / len(keys), 2) if keys else 0,
        },
        **f.window.echo(),
    }


def credit_waste(f: Facts, p: KeyStateParams) -> dict[str, Any]:
    keys = [k for k in _cohort(f, p) if allocated(k) > 0]  # waste of nothing is undefined
    rows = [
        {
            **key_label(k),
            "creditsAllocated": allocated(k),
            "creditsUsed": k.total_spent,
            "creditsRemaining": k.credits,
            "wastePercent": percent(k.credits, allocated(k)),
        }
        for k in keys
    ]
    rows.sort(key=lambda r: (-r["wastePercent"], -r["creditsRemaining"], r["name"], r["key"]))
    exact = [100 * k.credits / allocated(k) for k in keys]
    return {
        "keys": rows[: p.limit],
        "summary": {
            "totalKeys": len(keys),
            "totalAllocated": sum(allocated(k) for k in keys),
            "totalWasted": sum(k.credits for k in keys),
            "averageWastePercent": round(sum(exact) / len(exact), 2) if exact else 0.0,
        },
        **f.window.echo(),
    }


def burn_series(f: Facts, p: RateParams, keys: Sequence[KeyRecord], lookback: int) -> tuple[list[int], list[float]]:
    """The complete hours the rate is measured over and the credits charged in each, by the namespace's or
    the group's keys when the request names one."""
    hours = rate_hours(f, lookback, earliest_creation(f.all_keys()))
    members = {k.key_hash for k in keys} if p.group is not None else None
    return hours, hourly_credits(f, hours, p.namespace, members)


def measured(hours: Sequence[int]) -> dict[str, Any]:
    return {
        "measuredHours": len(hours),
        "measuredFrom": iso_hour(hours[0]) if hours else None,
        "measuredUntil": iso_hour(hours[-1] + 1) if hours else None,
    }


def credit_burn_rate(f: Facts, p: RateParams) -> dict[str, Any]:
    keys = scoped_keys(f, p.namespace, p.group, created_in_range=False)
    totals = balances(keys)
    hours, series = burn_series(f, p, keys, BURN_LOOKBACK_HOURS)
    per_hour = round(sum(series) / len(series), 2) if series else 0.0
    return {
        "burnRate": {
            "creditsPerHour": per_hour,
            "hoursUntilDepleted": hours_until(totals["totalRemaining"], per_hour),
            "utilizationPercent": percent(totals["totalSpent"], totals["totalAllocated"]),
            **measured(hours),
        },
        "summary": {**totals, "activeKeys": len(keys)},
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "credit-flow",
        credit_flow,
        "Live keys' credits allocated / spent / remaining; credits spent and refunded in the range by key and tool.",
        CallParams,
        "topSpenders",
    ),
    Report(
        "credit-efficiency",
        credit_efficiency,
        "How much of the allocated credit is spent; over- and under-provisioned keys.",
        EfficiencyParams,
        "overProvisioned",
    ),
    Report(
        "credit-distribution",
        credit_distribution,
        "Live keys by credit balance (histogram) and the median balance.",
        KeyStateParams,
        "buckets",
    ),
    Report(
        "credit-utilization",
        credit_utilization,
        "Live keys by the share of their allocation they have spent (bands).",
        KeyStateParams,
        "bands",
    ),
    Report(
        "credit-allocation",
        credit_allocation,
        "Live keys by allocation tier (credits held plus spent), with totals and the average allocation.",
        KeyStateParams,
        "tiers",
    ),
    Report(
        "credit-burn-rate",
        credit_burn_rate,
        "Credits charged per hour (the last 24 complete hours, or the range) and hours until live keys run dry.",
        RateParams,
    ),
    Report(
        "credit-waste",
        credit_waste,
        "Per live key: allocated, used and unused credits, the biggest share unused first.",
        KeyStateParams,
        "keys",
    ),
)
