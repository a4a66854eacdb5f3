"""Spend caps, pure (docs/money-rules.md#spend-caps): server-wide daily credit and call caps, per-key
hourly credit and call caps. A cap of 0 is no cap.

`exceeded` answers whether one more call costing `price` would take a counter past its cap. The counts
themselves live in `paygate.rules.spend_caps.SpendCaps`; the gate reads a snapshot (`CapFacts`) taken in
the same event-loop step as the charge, which is what makes a cap exact on one instance.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

HOUR = 3600
DAY = 86_400
CAP_REASON = "spend_cap_exceeded"  # the deny reason; the detail names the cap (`server_daily_credit_cap` …)
SERVER_CAPS = ("server_daily_credit_cap", "server_daily_call_cap")
KEY_CAPS = ("hourly_call_cap", "hourly_credit_cap")


@dataclass(frozen=True, slots=True)
class CapLimits:
    server_daily_credits: int = 0
    server_daily_calls: int = 0
    hourly_calls: int = 0  # per key
    hourly_credits: int = 0  # per key

    @property
    def any(self) -> bool:
        return bool(self.server_daily_credits or self.server_daily_calls or self.hourly_calls or self.hourly_credits)


@dataclass(frozen=True, slots=True)
class CapFacts:
    """What the gate reads: the limits, and the counts as they stand before this call."""

    limits: CapLimits
    server_calls: int = 0  # today (UTC), every key
    server_credits: int = 0
    key_calls: int = 0  # this hour (UTC), this key
    key_credits: int = 0

    def after(self, calls: int, credits: int) -> CapFacts:
        """As they would stand after `calls` more calls costing `credits` (a batch's earlier calls)."""
        if not (calls or credits):
            return self
        return dataclasses.replace(
            self,
            server_calls=self.server_calls + calls,
            server_credits=self.server_credits + credits,
            key_calls=self.key_calls + calls,
            key_credits=self.key_credits + credits,
        )


def exceeded(facts: CapFacts, price: int) -> tuple[str, str] | None:
    """(cap, detail) for the first cap one more call costing `price` would exceed, else None.
    Server-wide caps first (they refuse every key alike), then the key's own."""
    lim = facts.limits
    if lim.server_daily_credits and facts.server_credits + price > lim.server_daily_credits:
        return SERVER_CAPS[0], (
            f"{facts.server_credits}+{price} would exceed {lim.server_daily_credits} credits/day (server-wide)"
        )
    if lim.server_daily_calls and facts.server_calls + 1 > lim.server_daily_calls:
        return SERVER_CAPS[1], f"{facts.server_calls}+1 would exceed {lim.server_daily_calls} calls/day (server-wide)"
    if lim.hourly_calls and facts.key_calls + 1 > lim.hourly_calls:
        return KEY_CAPS[0], f"{facts.key_calls}+1 would exceed {lim.hourly_calls} calls/hour"
    if lim.hourly_credits and facts.key_credits + price > lim.hourly_credits:
        return KEY_CAPS[1], f"{facts.key_credits}+{price} would exceed {lim.hourly_credits} credits/hour"
    return None


def cap_of(detail: str) -> str:
    """The cap a spend-cap denial's detail names."""
    return detail.split(":", 1)[0]


def hour_start(now: float) -> float:
    return float(int(now) // HOUR * HOUR)


def day_start(now: float) -> float:
    return float(int(now) // DAY * DAY)
