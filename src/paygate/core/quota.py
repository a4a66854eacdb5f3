"""Usage quotas: daily and monthly call and credit counters with UTC resets (pure).

A counter belongs to a subject (a key hash, or `team:<id>`). Quotas count what
the gate admitted: calls and the credits charged at admission. A later refund
does not give quota back (the usage log, from which counters are rebuilt at
start, records the admission).
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

# Limit names: per key, group, plan and globalQuota; teams use the short names of the reference.
KEY_LIMITS = ("dailyCallLimit", "monthlyCallLimit", "dailyCreditLimit", "monthlyCreditLimit")
TEAM_LIMITS = ("dailyCalls", "monthlyCalls", "dailyCredits", "monthlyCredits")


def day_of(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def month_of(now: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(now))


def day_start(now: float) -> float:
    t = time.gmtime(now)
    return float(calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)))


def month_start(now: float) -> float:
    t = time.gmtime(now)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


def next_day(now: float) -> float:
    return day_start(now) + 86400


def next_month(now: float) -> float:
    t = time.gmtime(now)
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0)))


@dataclass(slots=True)
class Counter:
    day: str
    month: str
    day_calls: int = 0
    day_credits: int = 0
    month_calls: int = 0
    month_credits: int = 0
    day_ends: float = 0.0  # when `day` is over (0: not known yet); rolling is one comparison until then

    def roll(self, now: float) -> Counter:
        """Reset the periods that ended (in place); returns self."""
        if now < self.day_ends:
            return self
        month, day = month_of(now), day_of(now)
        if month != self.month:
            self.month, self.month_calls, self.month_credits = month, 0, 0
        if day != self.day:
            self.day, self.day_calls, self.day_credits = day, 0, 0
        self.day_ends = next_day(now)
        return self


def limits_of(quota: dict[str, int] | None, names: tuple[str, ...] = KEY_LIMITS) -> tuple[int, int, int, int]:
    """(daily calls, monthly calls, daily credits, monthly credits); 0 is unlimited."""
    if not quota:
        return 0, 0, 0, 0
    return (
        int(quota.get(names[0]) or 0),
        int(quota.get(names[1]) or 0),
        int(quota.get(names[2]) or 0),
        int(quota.get(names[3]) or 0),
    )


def exceeded(limits: tuple[int, int, int, int], used: Counter, credits: int) -> str | None:
    """Which limit one more call costing `credits` would pass, or None."""
    daily_calls, monthly_calls, daily_credits, monthly_credits = limits
    if daily_calls and used.day_calls + 1 > daily_calls:
        return f"daily call limit {daily_calls} reached"
    if monthly_calls and used.month_calls + 1 > monthly_calls:
        return f"monthly call limit {monthly_calls} reached"
    if daily_credits and used.day_credits + credits > daily_credits:
        return f"daily credit limit {daily_credits}: used {used.day_credits}, need {credits}"
    if monthly_credits and used.month_credits + credits > monthly_credits:
        return f"monthly credit limit {monthly_credits}: used {used.month_credits}, need {credits}"
    return None
