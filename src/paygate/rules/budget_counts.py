"""One budget policy's counts (rules/budgets.py): its target's credits today, this month, and in the burn-rate
window. The window is a log of per-second sums, so it holds at most `windowSeconds` entries whatever the
traffic; a second's credits stay in it until the whole second has left the window (one second longer than
exact: the burn rate it reports is never lower than the truth)."""

from __future__ import annotations

import math
from collections import deque

from paygate.core.quota import day_start, month_start, next_day


class BudgetCounts:
    __slots__ = (
        "_buckets",
        "_day",
        "_month",
        "_until",
        "day_spent",
        "month_spent",
        "window_seconds",
        "window_spent",
    )

    def __init__(self, window_seconds: int) -> None:
        self.window_seconds = window_seconds
        self._day = 0.0
        self._month = 0.0
        self._until = 0.0  # the next day's start: before it, neither the day nor the month changed
        self.day_spent = 0
        self.month_spent = 0
        self.window_spent = 0
        self._buckets: deque[list[int]] = deque()  # [second, credits], oldest first

    def roll(self, now: float) -> tuple[bool, bool]:
        """Start a new day / month when one began (the automatic reset): which of the two did."""
        new_day = new_month = False
        if not self._day <= now < self._until:  # (the calendar arithmetic once a day, not on every call)
            day, month = day_start(now), month_start(now)
            new_day, new_month = day != self._day, month != self._month
            if new_day:
                self._day, self.day_spent = day, 0
            if new_month:
                self._month, self.month_spent = month, 0
            self._until = next_day(now)
        buckets, window = self._buckets, self.window_seconds
        while buckets and buckets[0][0] + 1 + window <= now:  # second s has left once s + 1 <= now - window
            self.window_spent -= buckets.popleft()[1]
        return new_day, new_month

    def add(self, credits: int, now: float) -> None:
        self.roll(now)
        self.day_spent += credits
        self.month_spent += credits
        self.add_at(credits, now)

    def remove(self, credits: int, now: float) -> None:
        """A refund: taken back from today's, this month's and the window's newest seconds (never below 0)."""
        self.roll(now)
        self.day_spent = max(self.day_spent - credits, 0)
        self.month_spent = max(self.month_spent - credits, 0)
        left = credits
        for bucket in reversed(self._buckets):
            take = min(bucket[1], left)
            bucket[1] -= take
            self.window_spent -= take
            left -= take
            if not left:
                break

    def seconds_until_freed(self, credits: int, now: float) -> int:
        """Seconds until at least `credits` of the window's spend has left it (the window's length when
        what it holds could never free that much)."""
        freed = 0
        for second, spent in self._buckets:
            freed += spent
            if freed >= credits:
                return max(1, math.ceil(second + 1 + self.window_seconds - now))
        return self.window_seconds

    def seed(self, day: int, month: int, window: list[tuple[float, int]], now: float) -> None:
        """At start: the counts recounted from the usage log."""
        self.roll(now)
        self.day_spent, self.month_spent = day, month
        self._buckets.clear()
        self.window_spent = 0
        for ts, credits in sorted(window):
            self.add_at(credits, ts)
        self.roll(now)

    def add_at(self, credits: int, ts: float) -> None:
        """Into the window only (the day's and month's counts are the caller's)."""
        second = int(ts)
        self.window_spent += credits
        if self._buckets and self._buckets[-1][0] >= second:
            self._buckets[-1][1] += credits
        else:
            self._buckets.append([second, credits])
