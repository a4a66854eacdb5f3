"""Reports: consumers, part three (docs/analytics-consumers.md): rate limits and quotas. Denials come from
the rollups by reason; the current rate windows and quota counters are read as they stand (peeked: a report
never uses up a slot), and only for the keys a list shows, except where ranking needs them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports.consumers_common import PER_KEY_READS, ConsumerParams, Selection, select, sums
from paygate.analytics.shaping import key_label, ratio
from paygate.analytics.window import short_hour
from paygate.core.policy import QUOTA_FIELDS, has_limits
from paygate.core.records import KeyRecord
from paygate.reports.keys import WINDOW_MS, quota_view, window
from paygate.store.rollups import RollupRow

RATE_REASONS = frozenset({"rate_limited", "tool_rate_limited"})
QUOTA_REASONS = frozenset({"quota_exceeded", "team_quota_exceeded"})
TOP = 10  # rows in mostThrottled / mostConstrained (at most `limit`)
TREND_HOURS = 24


def per_key(f: Facts, sel: Selection, reasons: frozenset[str]) -> dict[str, tuple[int, int]]:
    """Selected keys with calls in the range: (calls, calls denied for one of `reasons`)."""
    out: dict[str, tuple[int, int]] = {}
    for row in f.rollup("key", "reason", key_hash=sel.key_hash, namespace=sel.namespace):
        h = row.group[0]
        if isinstance(h, str) and h in sel.hashes:
            calls, denied = out.get(h, (0, 0))
            out[h] = (calls + row.calls, denied + (row.calls if row.group[1] in reasons else 0))
    return out


def denied_of(f: Facts, sel: Selection, hashes: list[str], reasons: frozenset[str]) -> dict[str, int]:
    """Calls of these keys denied for one of `reasons` in the range: read key by key when they are few."""
    if len(hashes) > PER_KEY_READS:
        return {h: d for h, (_, d) in per_key(f, sel, reasons).items()}
    return {
        h: sum(r.calls for r in f.rollup("reason", key_hash=h, namespace=sel.namespace) if r.group[0] in reasons)
        for h in hashes
    }


def by_first(rows: Iterable[tuple[tuple[Any, ...], RollupRow]], reasons: frozenset[str]) -> dict[Any, list[int]]:
    """Rows grouped by (x, reason) summed per x: [calls, calls denied for one of `reasons`]."""
    out: dict[Any, list[int]] = {}
    for group, row in rows:
        counts = out.setdefault(group[0], [0, 0])
        counts[0] += row.calls
        counts[1] += row.calls if group[1] in reasons else 0
    return out


def denials(f: Facts, sel: Selection, reasons: frozenset[str], name: str) -> dict[str, Any]:
    """What rate-limits and quotas share: the summary counts, per tool and the last 24 hours by hour."""
    tools = by_first(sums(f, sel, "tool", "reason").items(), reasons)
    totals = [sum(c[0] for c in tools.values()), sum(c[1] for c in tools.values())]  # one query fewer
    last = f.window.last_hours(TREND_HOURS)
    hours = by_first(sums(f, sel, "hour", "reason", window=last).items(), reasons)
    return {
        "totals": totals,
        "perTool": [
            {"tool": tool, "calls": c[0], name: c[1]}
            for tool, c in sorted(tools.items(), key=lambda t: (-t[1][1], -t[1][0], t[0]))
        ],
        "hourlyTrends": [
            {"hour": short_hour(h), "calls": hours.get(h, [0, 0])[0], name: hours.get(h, [0, 0])[1]}
            for h in last.hours()
        ],
    }


def rate_limits(f: Facts, p: ConsumerParams) -> dict[str, Any]:
    sel = select(f, p, live=False)  # a revoked key's throttled calls still happened
    counts = per_key(f, sel, RATE_REASONS)
    by_hash = f.key_by_hash()
    ranked = sorted(counts.items(), key=lambda c: (-c[1][1], -c[1][0], by_hash[c[0]].name, by_hash[c[0]].masked))
    shared = denials(f, sel, RATE_REASONS, "rateLimited")
    calls, limited = shared["totals"]
    key_reports = f.reports()

    def current(record: KeyRecord) -> dict[str, Any]:
        limit = key_reports.global_rate_limit(record)  # the key's group or plan may set its own
        w = window(f.store, record.key_hash, limit, f.now)
        return {"limitPerMin": limit, "currentWindowUsed": w["used"], "currentWindowRemaining": w["remaining"]}

    return {
        "config": {"globalLimitPerMin": f.global_rate_limit(), "windowMs": WINDOW_MS},
        "summary": {"totalCalls": calls, "totalRateLimited": limited, "rateLimitRate": ratio(limited, calls)},
        "perKey": [  # only the keys shown are peeked
            {**key_label(by_hash[h]), "calls": c, "rateLimited": d, **current(by_hash[h])}
            for h, (c, d) in ranked[: p.limit]
        ],
        "perTool": shared["perTool"],
        "hourlyTrends": shared["hourlyTrends"],
        "mostThrottled": [
            {**key_label(by_hash[h]), "rateLimited": d, "calls": c, "throttleRate": ratio(d, c)}
            for h, (c, d) in ranked[: min(TOP, p.limit)]
            if d > 0
        ],
        **f.window.echo(),
    }


def global_quota(f: Facts) -> dict[str, int] | None:
    configured = f.billing.facts.global_quota
    if not has_limits(configured):
        return None
    assert configured is not None
    return {name: int(configured.get(name) or 0) for name in QUOTA_FIELDS}


def quota_row(f: Facts, record: KeyRecord) -> dict[str, Any]:
    """The key's quota counters now against its effective limits (limit 0: none, utilization 0)."""
    view = quota_view(f.billing.quota_status(record))
    day, month = view["daily"], view["monthly"]
    return {
        **key_label(record),
        "dailyCalls": day["callsUsed"],
        "monthlyCalls": month["callsUsed"],
        "dailyCredits": day["creditsUsed"],
        "monthlyCredits": month["creditsUsed"],
        "dailyCallLimit": day["callsLimit"],
        "monthlyCallLimit": month["callsLimit"],
        "dailyCreditLimit": day["creditsLimit"],
        "monthlyCreditLimit": month["creditsLimit"],
        "dailyCallUtilization": ratio(day["callsUsed"], day["callsLimit"]),
        "monthlyCallUtilization": ratio(month["callsUsed"], month["callsLimit"]),
        "dailyCreditUtilization": ratio(day["creditsUsed"], day["creditsLimit"]),
        "monthlyCreditUtilization": ratio(month["creditsUsed"], month["creditsLimit"]),
        "source": view["quotaSource"],
    }


UTILIZATIONS = ("dailyCallUtilization", "monthlyCallUtilization", "dailyCreditUtilization", "monthlyCreditUtilization")


def utilization(row: dict[str, Any]) -> float:
    """The key's tightest limit: its highest utilization."""
    return max(float(row[name]) for name in UTILIZATIONS)


CONSTRAINT_FIELDS = (
    "dailyCalls",
    "dailyCallLimit",
    "dailyCallUtilization",
    "monthlyCalls",
    "monthlyCallLimit",
    "monthlyCallUtilization",
)


def quotas(f: Facts, p: ConsumerParams) -> dict[str, Any]:
    sel = select(f, p)  # quota counters matter for keys that can still call
    key_reports = f.reports()
    limited = [k for k in sel.keys if key_reports.policy(k).quota_source != "none"]
    # Keys with a quota are read to rank them; of the others, only those the list shows (by name).
    rows = sorted(
        ((quota_row(f, k), k) for k in limited), key=lambda r: (-utilization(r[0]), r[0]["name"], r[0]["key"])
    )
    constrained = sorted(
        (r for r, _ in rows),
        key=lambda r: (-r["dailyCallUtilization"], -r["monthlyCallUtilization"], r["name"], r["key"]),
    )
    with_quota = {k.key_hash for k in limited}
    rest = sorted((k for k in sel.keys if k.key_hash not in with_quota), key=lambda k: (k.name, k.masked))
    shown = rows[: p.limit] + [(quota_row(f, k), k) for k in rest[: max(p.limit - len(rows), 0)]]
    denied_by_key = denied_of(f, sel, [k.key_hash for _, k in shown], QUOTA_REASONS)
    for row, k in shown:
        row["quotaDenied"] = denied_by_key.get(k.key_hash, 0)
    shared = denials(f, sel, QUOTA_REASONS, "quotaDenied")
    calls, denied = shared["totals"]
    return {
        "config": {"globalQuota": global_quota(f)},
        "summary": {
            "totalKeys": len(sel.keys),
            "keysWithQuotas": len(limited),
            "totalCalls": calls,
            "totalQuotaDenials": denied,
            "quotaDenialRate": ratio(denied, calls),
        },
        "perKey": [row for row, _ in shown],
        "perTool": shared["perTool"],
        "hourlyTrends": shared["hourlyTrends"],
        "mostConstrained": [
            {"name": r["name"], "key": r["key"], **{name: r[name] for name in CONSTRAINT_FIELDS}}
            for r in constrained[: min(TOP, p.limit)]
        ],
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "rate-limits",
        rate_limits,
        "Rate-limit denials in the range per key, tool and hour; each listed key's current window.",
        ConsumerParams,
        "perKey",
    ),
    Report(
        "quotas",
        quotas,
        "Each live key's daily / monthly quota use against its limits; quota denials per tool and hour.",
        ConsumerParams,
        "perKey",
    ),
)
