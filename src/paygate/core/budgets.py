"""Budget policies, pure (docs/money-rules.md#budget-policies): daily and monthly credit budgets and a burn
rate limit (credits/minute over a window) on a target's spend, with an action: alert, throttle or deny.

`refusal` answers whether one more call costing `price` is refused by one of the policies a key's call
meets. The counts live in `paygate.rules.budgets`; the gate reads a snapshot (`BudgetFacts`) taken in
the same event-loop step as the charge, which is what makes a budget exact on one instance.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Protocol

EXCEEDED = "budget_exceeded"  # a budget (or, with action deny, the burn rate) would be passed: no Retry-After
THROTTLED = "budget_throttled"  # action throttle, burn rate: refused until the window's rate falls back
ACTIONS = ("alert", "throttle", "deny")


class Window(Protocol):
    """A target's burn-rate window: what it would take for `credits` of its spend to leave it."""

    def seconds_until_freed(self, credits: int, now: float) -> int: ...


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """One policy's limits and its target's spend as it stands before this call."""

    policy_id: str
    action: str
    daily_budget: int  # credits per UTC day (0: none)
    monthly_budget: int  # credits per UTC month (0: none)
    burn_limit: int  # credits per minute, averaged over the window (0: none)
    window_seconds: int
    day_spent: int
    month_spent: int
    window_spent: int
    window: Window | None = None  # asked only to say how long a throttled call must wait

    @property
    def window_allowance(self) -> int:
        """Credits the window may hold: the burn rate limit times the window's minutes."""
        return self.burn_limit * self.window_seconds // 60

    def after(self, credits: int) -> PolicyFacts:
        """As it would stand after earlier calls of a batch costing `credits`."""
        return dataclasses.replace(
            self,
            day_spent=self.day_spent + credits,
            month_spent=self.month_spent + credits,
            window_spent=self.window_spent + credits,
        )


@dataclass(frozen=True, slots=True)
class BudgetFacts:
    """The policies a call meets (the key's own, its namespace's, and `*`), deny and throttle ones only:
    an alert policy never refuses, so the gate need not read it."""

    policies: tuple[PolicyFacts, ...]
    now: float

    def after(self, calls: int, credits: int) -> BudgetFacts:
        if not credits:
            return self
        return BudgetFacts(tuple(p.after(credits) for p in self.policies), self.now)


@dataclass(frozen=True, slots=True)
class Refusal:
    policy_id: str
    reason: str  # EXCEEDED or THROTTLED
    detail: str
    retry_after: int | None = None  # seconds (throttle)


def refusal(facts: BudgetFacts, price: int) -> Refusal | None:
    """The first policy one more call costing `price` would take over a budget or its burn rate limit."""
    for p in facts.policies:
        if p.daily_budget and p.day_spent + price > p.daily_budget:
            return Refusal(p.policy_id, EXCEEDED, f"{p.day_spent}+{price} would exceed {p.daily_budget} credits/day")
        if p.monthly_budget and p.month_spent + price > p.monthly_budget:
            return Refusal(
                p.policy_id, EXCEEDED, f"{p.month_spent}+{price} would exceed {p.monthly_budget} credits/month"
            )
        allowance = p.window_allowance
        if p.burn_limit and p.window_spent + price > allowance:
            minutes = p.window_seconds // 60
            detail = (
                f"{p.window_spent}+{price} credits in {minutes} min would exceed {p.burn_limit} credits/min"
                f" ({allowance} per window)"
            )
            if p.action != "throttle" or price > allowance:  # a call the window could never hold is not retried
                return Refusal(p.policy_id, EXCEEDED, detail)
            need = p.window_spent + price - allowance
            wait = p.window.seconds_until_freed(need, facts.now) if p.window is not None else p.window_seconds
            return Refusal(p.policy_id, THROTTLED, detail, max(1, wait))
    return None


def burn_rate(window_spent: int, window_seconds: int) -> float:
    """Credits per minute over the window."""
    return window_spent * 60 / window_seconds if window_seconds else 0.0


def forecast_seconds(remaining: int | None, rate_per_min: float) -> int | None:
    """How long `remaining` credits last at `rate_per_min` (None: no budget, or nothing being spent)."""
    if remaining is None or rate_per_min <= 0:
        return None
    return math.ceil(remaining / rate_per_min * 60)
