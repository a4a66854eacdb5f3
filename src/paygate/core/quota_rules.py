"""Quota rules, pure (docs/money-rules.md#quota-rules): daily, weekly or monthly caps on one key's (or every
key's) calls or credits, for one tool or all, with a burst allowance and an overage action.

A rule's hard cap is `limit * (100 + burstPercent) / 100` (rounded down). `judge` answers what one more
call costing `price` meets: nothing; a warning (it takes the count past `limit`, within the hard cap, or
any overage of a `warn` rule); or a refusal (it would pass the hard cap of a `deny` or `throttle` rule).
The counts live in `paygate.rules.quota_rules.QuotaRules`; the gate reads them in the step of the charge.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

REASON = "quota_rule_exceeded"
PERIODS = ("daily", "weekly", "monthly")
METRICS = ("calls", "credits")
ACTIONS = ("deny", "warn", "throttle")
DAY = 86_400
UNIT = {"daily": "day", "weekly": "week", "monthly": "month"}


@dataclass(frozen=True, slots=True)
class QuotaRule:
    id: str
    key_hash: str  # "*": every key
    tool: str | None  # None: every tool
    period: str
    metric: str
    limit: int
    burst_percent: int
    action: str

    @property
    def hard_cap(self) -> int:
        return self.limit * (100 + self.burst_percent) // 100

    def applies(self, key_hash: str, tool: str) -> bool:
        return (self.key_hash == "*" or self.key_hash == key_hash) and (self.tool is None or self.tool == tool)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one more call meets: `refuse` (rule, detail, seconds until the period rolls over) or warnings."""

    refuse: tuple[QuotaRule, str, int] | None = None
    warnings: tuple[str, ...] = ()


OK = Verdict()


def judge(used: list[tuple[QuotaRule, int]], price: int, now: float) -> Verdict:
    """`used`: each applicable rule with its count so far this period. The first rule refusing wins."""
    warnings: list[str] = []
    for rule, count in used:
        step = 1 if rule.metric == "calls" else price
        after = count + step
        if after <= rule.limit or not step:
            continue
        text = f"{rule.id}: {count}+{step} {rule.metric} would pass {rule.limit}/{UNIT[rule.period]}"
        if after > rule.hard_cap and rule.action != "warn":
            return Verdict((rule, f"{text} (hard cap {rule.hard_cap})", reset_in(rule.period, now)))
        warnings.append(f"{rule.id}; {rule.metric}={after}; limit={rule.limit}; hardCap={rule.hard_cap}")
    return Verdict(None, tuple(warnings)) if warnings else OK


def period_start(period: str, now: float) -> float:
    """UTC: daily at midnight, weekly on Monday at midnight, monthly on the 1st at midnight."""
    day = int(now) // DAY * DAY
    if period == "daily":
        return float(day)
    if period == "weekly":
        return float(day - time.gmtime(day).tm_wday * DAY)  # tm_wday: Monday is 0
    t = time.gmtime(now)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


def period_end(period: str, now: float) -> float:
    start = period_start(period, now)
    if period == "daily":
        return start + DAY
    if period == "weekly":
        return start + 7 * DAY
    t = time.gmtime(start)
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0)))


def reset_in(period: str, now: float) -> int:
    """Whole seconds until the period rolls over (at least 1)."""
    return max(int(period_end(period, now) - now + 0.999), 1)
