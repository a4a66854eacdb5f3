"""Reports: consumers, part two (docs/analytics-consumers.md): spend velocity, risk score, growth and the
key ranking. Every list is of live keys (not revoked, not suspended)."""

from __future__ import annotations

from typing import Any, Literal

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports.consumers_common import ConsumerParams, KeyUsage, select, span_hours, usage
from paygate.analytics.shaping import allocated, key_label
from paygate.store.rollups import HOUR

# Risk levels by score, highest first: (level, lowest score).
RISK_LEVELS: tuple[tuple[str, int], ...] = (("critical", 75), ("high", 50), ("medium", 25), ("low", 0))
NEW_CONSUMER_HOURS = 24


def consumer_spend_velocity(f: Facts, p: ConsumerParams) -> dict[str, Any]:
    sel = select(f, p)
    use = usage(f, sel)
    rows = []
    for k in sel.keys:
        spent = use.get(k.key_hash, KeyUsage()).spent
        rate = spent / span_hours(f, k)
        rows.append((rate, k, spent))
    rows.sort(key=lambda r: (-r[0], r[1].name, r[1].masked))
    return {
        "consumers": [
            {
                **key_label(k),
                "totalSpent": spent,
                "creditsRemaining": k.credits,
                "creditsPerHour": round(rate, 2),
                "hoursUntilDepleted": round(k.credits / rate, 2) if rate > 0 else None,
            }
            for rate, k, spent in rows[: p.limit]
        ],
        "summary": {
            "totalConsumers": len(rows),
            "fastestSpender": rows[0][1].name if rows and rows[0][0] > 0 else None,
        },
        **f.window.echo(),
    }


def risk_level(score: int) -> str:
    return next(level for level, least in RISK_LEVELS if score >= least)


def consumer_risk_score(f: Facts, p: ConsumerParams) -> dict[str, Any]:
    sel = select(f, p)
    rows = []
    for k in sel.keys:
        given = allocated(k)
        exact = 100 * k.total_spent / given if given > 0 else 0.0
        score = min(max(round(exact), 0), 100)
        rows.append((score, exact, k))
    rows.sort(key=lambda r: (-r[0], -r[1], r[2].name, r[2].masked))
    distribution = {level: 0 for level, _ in reversed(RISK_LEVELS)}
    for score, _, _ in rows:
        distribution[risk_level(score)] += 1
    use = usage(f, sel, (k.key_hash for _, _, k in rows[: p.limit]))  # the score is the key's state
    return {
        "consumers": [
            {
                **key_label(k),
                "riskScore": score,
                "riskLevel": risk_level(score),
                "creditsRemaining": k.credits,
                "totalSpent": k.total_spent,
                "utilizationPercent": score,
                "spentInRange": use.get(k.key_hash, KeyUsage()).spent,
            }
            for score, _, k in rows[: p.limit]
        ],
        "summary": {"totalConsumers": len(rows), "riskDistribution": distribution},
        **f.window.echo(),
    }


def consumer_growth(f: Facts, p: ConsumerParams) -> dict[str, Any]:
    sel = select(f, p)
    keys = sorted(sel.keys, key=lambda k: (-allocated(k), k.name, k.masked))
    use = usage(f, sel, (k.key_hash for k in keys[: p.limit]))  # ranked by allocation: read what is shown
    newest = f.now - NEW_CONSUMER_HOURS * HOUR
    return {
        "consumers": [
            {
                **key_label(k),
                "ageHours": round(max(f.now - k.created_at, 0.0) / HOUR, 2),
                "totalSpent": (spent := use.get(k.key_hash, KeyUsage()).spent),
                "creditsAllocated": allocated(k),
                "spendRate": round(spent / span_hours(f, k), 2),
            }
            for k in keys[: p.limit]
        ],
        "summary": {
            "totalConsumers": len(keys),
            "newConsumers24h": sum(1 for k in keys if newest < k.created_at <= f.now),
        },
        **f.window.echo(),
    }


SortBy = Literal["totalSpent", "totalCalls", "creditsRemaining"]


class RankingParams(ConsumerParams):
    sort_by: SortBy = "totalSpent"


def key_ranking(f: Facts, p: RankingParams) -> dict[str, Any]:
    sel = select(f, p)
    if p.sort_by == "creditsRemaining":  # ranked by balance: read the calls of the keys shown only
        shown = sorted(sel.keys, key=lambda k: (-k.credits, k.name, k.masked))[: p.limit]
        use = usage(f, sel, (k.key_hash for k in shown))
    else:
        use = usage(f, sel)
    rows = []
    for k in sel.keys:
        u = use.get(k.key_hash, KeyUsage())
        rows.append({**key_label(k), "totalSpent": u.spent, "totalCalls": u.calls, "creditsRemaining": k.credits})
    rows.sort(key=lambda r: (-r[p.sort_by], r["name"], r["key"]))
    return {
        "rankings": [{"rank": i, **row} for i, row in enumerate(rows[: p.limit], 1)],
        "summary": {"totalKeys": len(rows), "sortedBy": p.sort_by},
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "key-ranking",
        key_ranking,
        "Live keys ranked by credits spent, calls (in the range) or credits remaining (?sortBy=).",
        RankingParams,
        "rankings",
    ),
    Report(
        "consumer-spend-velocity",
        consumer_spend_velocity,
        "Each live key's credits per hour over the range and the hours until its balance runs out.",
        ConsumerParams,
        "consumers",
    ),
    Report(
        "consumer-risk-score",
        consumer_risk_score,
        "Each live key's risk of running out: the share of its credits it has spent, as low … critical.",
        ConsumerParams,
        "consumers",
    ),
    Report(
        "consumer-growth",
        consumer_growth,
        "Each live key's age, allocation, spend and spend rate; keys created in the last 24 hours.",
        ConsumerParams,
        "consumers",
    ),
)
