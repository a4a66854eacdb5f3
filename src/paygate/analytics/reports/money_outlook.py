"""Reports: money, what is coming (docs/analytics-money.md): the revenue forecast (a least-squares line through
hourly credits, capped by the credits left) and the per-key usage forecast; anomalies in money_anomalies.py."""

from __future__ import annotations

import bisect
import math
from typing import Any

from pydantic import Field

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports import money_anomalies
from paygate.analytics.reports.money_common import (
    FORECAST_LOOKBACK_HOURS,
    RateParams,
    balances,
    hours_window,
    is_allowed,
    rate_hours,
    scoped_keys,
)
from paygate.analytics.reports.money_credits import burn_series, measured
from paygate.analytics.reports.money_methods import forecast, hours_until, least_squares
from paygate.analytics.shaping import ratio
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.store.rollups import HOUR, RollupRow, hour_of

AT_RISK_CALLS = 5  # the reference's: at most this many calls left at the key's average price
AT_RISK_HOURS = 24  # ours as well: at its recent rate the key runs dry within a day


class ForecastParams(RateParams):
    key: str | None = Field(default=None, min_length=1, max_length=200)
    limit: int = Field(default=100, ge=1, le=10_000, description="rows in keyForecasts")


def revenue_forecast(f: Facts, p: RateParams) -> dict[str, Any]:
    keys = scoped_keys(f, p.namespace, p.group, created_in_range=False)
    totals = balances(keys)
    hours, series = burn_series(f, p, keys, FORECAST_LOOKBACK_HOURS)
    line = least_squares(series)
    return {
        "forecast": forecast(series, totals["totalRemaining"]),
        "current": {
            "totalSpent": totals["totalSpent"],
            "totalRemaining": totals["totalRemaining"],
            "creditsPerHour": round(sum(series) / len(series), 2) if series else 0.0,
            "activeKeys": len(keys),
        },
        "trend": {
            "method": "least-squares line through hourly credits, projected hour by hour (never below 0), "
            "capped by the credits remaining",
            "slopePerHour": round(line.slope, 4),
            "nextHourRate": round(max(line.at(len(series)), 0.0), 2),
            **measured(hours),
        },
        **f.window.echo(),
    }


def _key_forecast(record: KeyRecord, recent: RollupRow | None, hours: list[int], now: float) -> dict[str, Any]:
    avg = record.total_spent / record.total_calls if record.total_calls else 0.0
    calls_left = math.floor(record.credits / avg) if avg > 0 else None
    # The key's recent rate: its credits over the measured hours it existed in (a key made an hour ago is
    # not diluted by the week before it).
    lived = len(hours) - bisect.bisect_left(hours, hour_of(record.created_at))  # `hours` ascend (rate_hours)
    per_hour = round((recent.credits if recent else 0) / lived, 2) if lived else 0.0
    left_hours = hours_until(record.credits, per_hour)
    return {
        "keyName": record.name,
        "key": record.masked,
        "creditsRemaining": record.credits,
        "totalSpent": record.total_spent,
        "callCount": record.total_calls,
        "avgCreditsPerCall": round(avg, 2),
        "estimatedCallsRemaining": calls_left,
        "creditsPerHour": per_hour,
        "hoursUntilDepleted": left_hours,
        "estimatedDepletionAt": None if left_hours is None else iso_time(now + left_hours * HOUR),
        "atRisk": (calls_left is not None and calls_left <= AT_RISK_CALLS)
        or (left_hours is not None and left_hours <= AT_RISK_HOURS),
    }


def _urgency(row: dict[str, Any]) -> tuple[Any, ...]:
    hours, calls = row["hoursUntilDepleted"], row["estimatedCallsRemaining"]
    return (
        not row["atRisk"],
        hours is None,
        hours or 0.0,
        calls is None,
        calls or 0,
        row["keyName"],
        row["key"],
    )


def usage_forecast(f: Facts, p: ForecastParams) -> dict[str, Any]:
    keys = scoped_keys(f, p.namespace, p.group, created_in_range=False)
    if p.key is not None:
        wanted = f.find_key(p.key).key_hash
        keys = [k for k in keys if k.key_hash == wanted]
    hours = rate_hours(f, FORECAST_LOOKBACK_HOURS, None)
    recent: dict[str, RollupRow] = {}
    if hours:
        for row in f.rollup("key", window=hours_window(f, hours), namespace=p.namespace):
            if isinstance(row.group[0], str):
                recent[row.group[0]] = row
    rows = sorted((_key_forecast(k, recent.get(k.key_hash), hours, f.now) for k in keys), key=_urgency)
    tools: dict[str, RollupRow] = {}
    key_hash = wanted if p.key is not None else None
    for r in f.rollup("tool", "reason", key_hash=key_hash, namespace=p.namespace):
        if is_allowed(r.group[1]):
            tools.setdefault(str(r.group[0]), RollupRow((r.group[0],))).merge(r)
    by_tool = sorted(tools.items(), key=lambda tr: (-tr[1].credits, -tr[1].calls, tr[0]))
    per_hour = round(sum(r["creditsPerHour"] for r in rows), 2)
    remaining = sum(k.credits for k in keys)
    return {
        "summary": {"totalActiveKeys": len(keys), "keysAtRisk": sum(r["atRisk"] for r in rows)},
        "keyForecasts": rows[: p.limit],
        "systemForecast": {
            "totalCreditsRemaining": remaining,
            "totalCreditsSpent": sum(k.total_spent for k in keys),
            "totalCalls": sum(k.total_calls for k in keys),
            "creditsPerHour": per_hour,
            "hoursUntilDepleted": hours_until(remaining, per_hour),
            **measured(hours),
            "byTool": [
                {
                    "tool": tool,
                    "calls": r.calls,
                    "totalCredits": r.credits,
                    "avgCreditsPerCall": ratio(r.credits, r.calls, 2),
                }
                for tool, r in by_tool
            ],
        },
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    *money_anomalies.REPORTS,
    Report(
        "forecast",
        usage_forecast,
        "Per live key: calls and hours left at its average price and recent rate, and who runs dry soon.",
        ForecastParams,
        "keyForecasts",
    ),
    Report(
        "revenue-forecast",
        revenue_forecast,
        "Credits expected next hour / day / week / month: a least-squares trend of hourly credits, capped.",
        RateParams,
    ),
)
