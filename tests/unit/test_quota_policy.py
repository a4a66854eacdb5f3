"""Quota counters and limits (UTC periods), and the key/group/plan policy resolution table."""

from __future__ import annotations

import calendar
from fractions import Fraction
from typing import Any

import pytest

from paygate.core import quota
from paygate.core.policy import resolve
from paygate.core.records import KeyRecord

JAN_31_2359 = float(calendar.timegm((2026, 1, 31, 23, 59, 0)))
DEC_31_2359 = float(calendar.timegm((2026, 12, 31, 23, 59, 0)))


def key(**kw: Any) -> KeyRecord:
    return KeyRecord(
        **{"key_hash": "h", "prefix": "pg_abcd", "last4": "wxyz", "name": "k", "credits": 10, "created_at": 0.0, **kw}
    )


def test_counters_reset_at_utc_midnight_and_at_the_month_boundary() -> None:
    c = quota.Counter(quota.day_of(JAN_31_2359), quota.month_of(JAN_31_2359), 3, 30, 7, 70)
    c.roll(JAN_31_2359 + 30)  # same day
    assert (c.day_calls, c.month_calls) == (3, 7)
    c.roll(JAN_31_2359 + 120)  # Feb 1st: both periods reset
    assert (c.day_calls, c.day_credits, c.month_calls, c.month_credits) == (0, 0, 0, 0)
    c.day_calls, c.month_calls = 5, 9
    c.roll(JAN_31_2359 + 120 + 86400)  # Feb 2nd: only the day resets
    assert (c.day_calls, c.month_calls) == (0, 9)


def test_period_boundaries() -> None:
    assert quota.next_day(JAN_31_2359) == calendar.timegm((2026, 2, 1, 0, 0, 0))
    assert quota.next_month(JAN_31_2359) == calendar.timegm((2026, 2, 1, 0, 0, 0))
    assert quota.next_month(DEC_31_2359) == calendar.timegm((2027, 1, 1, 0, 0, 0))
    assert quota.month_start(JAN_31_2359) == calendar.timegm((2026, 1, 1, 0, 0, 0))


@pytest.mark.parametrize(
    ("limits", "used", "credits", "expected"),
    [
        ((0, 0, 0, 0), (100, 100, 100, 100), 5, None),  # 0 is unlimited
        ((3, 0, 0, 0), (2, 0, 0, 0), 1, None),
        ((3, 0, 0, 0), (3, 0, 0, 0), 1, "daily call"),
        ((0, 10, 0, 0), (0, 0, 10, 0), 1, "monthly call"),
        ((0, 0, 50, 0), (0, 45, 0, 0), 5, None),  # exactly reaching the limit is allowed
        ((0, 0, 50, 0), (0, 46, 0, 0), 5, "daily credit"),
        ((0, 0, 0, 200), (0, 0, 0, 199), 2, "monthly credit"),
    ],
)
def test_limits(
    limits: tuple[int, int, int, int], used: tuple[int, int, int, int], credits: int, expected: str | None
) -> None:
    c = quota.Counter("d", "m", day_calls=used[0], day_credits=used[1], month_calls=used[2], month_credits=used[3])
    why = quota.exceeded(limits, c, credits)
    assert (why is None) if expected is None else (why is not None and why.startswith(expected))


GROUP = {
    "active": True,
    "allowedTools": ["search", "read"],
    "deniedTools": ["delete"],
    "rateLimitPerMin": 30,
    "ipAllowlist": ["10.0.0.0/8"],
    "quota": {"dailyCallLimit": 100},
    "toolPricing": {"search": {"creditsPerCall": 2}},
    "maxSpendingLimit": 500,
}
PLAN = {
    "allowedTools": ["plan_tool"],
    "deniedTools": ["admin"],
    "rateLimitPerMin": 10,
    "quota": {"monthlyCallLimit": 1000},
    "creditMultiplier": 1.5,
}


def test_the_key_wins_where_the_table_says_so() -> None:
    p = resolve(key(allowed_tools=["mine"], quota={"dailyCallLimit": 5}, spending_limit=50), GROUP, PLAN, None)
    assert p.allowed_tools == {"mine"}
    assert p.quota is not None and p.quota["dailyCallLimit"] == 5 and p.quota_source == "key"
    assert p.spending_limit == 50


def test_group_then_plan_fill_in_what_the_key_leaves_open() -> None:
    p = resolve(key(denied_tools=["x"], ip_allowlist=["1.2.3.4"]), GROUP, PLAN, {"dailyCallLimit": 9})
    assert p.allowed_tools == {"search", "read"}
    assert p.denied_tools == {"x", "delete", "admin"}  # union: most restrictive
    assert p.ip_allowlist == ("1.2.3.4", "10.0.0.0/8")  # union: additive
    assert p.rate_limit_per_min == 30
    assert p.quota_source == "group" and p.spending_limit == 500
    assert p.per_call("search", 1) == 2 and p.per_call("other", 1) == 1
    assert p.credit_multiplier == Fraction(3, 2)
    only_plan = resolve(key(), None, PLAN, {"dailyCallLimit": 9})
    assert only_plan.allowed_tools == {"plan_tool"} and only_plan.rate_limit_per_min == 10
    assert only_plan.quota_source == "plan"


def test_global_quota_applies_last_and_an_inactive_group_is_ignored() -> None:
    p = resolve(key(), {**GROUP, "active": False}, None, {"dailyCallLimit": 9, "monthlyCallLimit": 0})
    assert p.quota_source == "global" and p.quota is not None and p.quota["dailyCallLimit"] == 9
    assert p.allowed_tools == frozenset() and p.rate_limit_per_min is None
    none = resolve(key(quota={"dailyCallLimit": 0}), None, None, None)  # all-zero quota: no quota
    assert none.quota is None and none.quota_source == "none"


@pytest.mark.parametrize(
    ("multiplier", "amount", "expected"),
    [(1, 7, 7), (1.5, 3, 5), (0.5, 3, 2), ("0.1", 1, 1), (2, 0, 0), ("1.0001", 10000, 10001)],
)
def test_the_plan_multiplier_rounds_up_exactly(multiplier: Any, amount: int, expected: int) -> None:
    assert resolve(key(), None, {"creditMultiplier": multiplier}, None).scale(amount) == expected
