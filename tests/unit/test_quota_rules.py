"""Quota rules (docs/money-rules.md#quota-rules): the pure judgement and periods, the counts, and the property
that under any sequence of calls, refunds and rules — concurrent calls included — credits are conserved and
no hard cap of a deny or throttle rule is ever passed."""

from __future__ import annotations

import asyncio
import calendar
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.billing.outcomes import Admitted, Refused
from paygate.billing.service import BillingService
from paygate.core.quota_rules import QuotaRule, judge, period_end, period_start, reset_in
from paygate.events.hub import EventHub
from paygate.rules.quota_rules import QuotaRules
from paygate.store.sqlite import SQLiteStore
from tests.unit.ledger_world import TOOLS, assert_on_disk, build


def _rule(limit: int, *, burst: int = 0, action: str = "deny", metric: str = "calls") -> QuotaRule:
    return QuotaRule("qr_t", "*", None, "daily", metric, limit, burst, action)


def test_the_hard_cap_is_the_limit_plus_the_burst_rounded_down() -> None:
    assert _rule(10).hard_cap == 10
    assert _rule(10, burst=50).hard_cap == 15
    assert _rule(3, burst=50).hard_cap == 4  # 4.5 rounded down
    assert _rule(7, burst=100).hard_cap == 14


def test_judge_warns_within_the_burst_and_refuses_past_the_hard_cap() -> None:
    rule = _rule(2, burst=50)  # hard cap 3
    now = 1_700_000_000.0
    assert judge([(rule, 1)], 1, now).refuse is None and not judge([(rule, 1)], 1, now).warnings
    within = judge([(rule, 2)], 1, now)
    assert within.refuse is None and within.warnings
    past = judge([(rule, 3)], 1, now).refuse
    assert past is not None and past[0] is rule and past[1].startswith("qr_t: 3+1 calls would pass 2/day")
    assert past[2] == reset_in("daily", now)


def test_a_warn_rule_never_refuses_and_a_credit_rule_weighs_the_price() -> None:
    assert judge([(_rule(1, action="warn"), 100)], 1, 0.0).refuse is None
    credits = _rule(10, metric="credits")
    assert judge([(credits, 7)], 3, 0.0).refuse is None
    assert judge([(credits, 7)], 4, 0.0).refuse is not None
    assert judge([(credits, 10)], 0, 0.0).refuse is None  # a free call spends nothing


def test_periods_are_utc_midnight_monday_and_the_first() -> None:
    wed = calendar.timegm((2026, 12, 9, 15, 30, 0))  # a Wednesday
    assert period_start("daily", wed) == calendar.timegm((2026, 12, 9, 0, 0, 0))
    assert period_start("weekly", wed) == calendar.timegm((2026, 12, 7, 0, 0, 0))  # Monday
    assert period_start("monthly", wed) == calendar.timegm((2026, 12, 1, 0, 0, 0))
    assert period_end("monthly", wed) == calendar.timegm((2027, 1, 1, 0, 0, 0))  # December rolls into January
    assert period_end("weekly", wed) == calendar.timegm((2026, 12, 14, 0, 0, 0))
    monday = calendar.timegm((2026, 12, 7, 0, 0, 0))
    assert period_start("weekly", monday) == monday


def _rules(store: SQLiteStore, billing: BillingService, *docs: dict[str, object]) -> QuotaRules:
    rules = QuotaRules(store, EventHub(), billing.facts)
    rules.load(time.time())
    billing.after_denial.append(rules.on_denial)
    for doc in docs:
        rules.create(dict(doc), None, "test", time.time())
    return rules


def test_counts_roll_over_at_the_period(memory_store: SQLiteStore) -> None:
    billing, _, _ = build(memory_store, [5], False)
    rules = _rules(memory_store, billing, {"limit": 1})
    now = 1_700_000_000.0
    rules.add("k", "cheap", 1, 3, now)
    assert [u for _, u in rules.facts("k", "cheap", now) or []] == [1]
    assert [u for _, u in rules.facts("k", "cheap", now + 86_400) or []] == [0]
    rules.remove("k", "cheap", 5, 50, now + 86_400)  # never below zero
    assert [u for _, u in rules.facts("k", "cheap", now + 86_400) or []] == [0]


@pytest.mark.parametrize("limit", [1, 7, 25])
def test_many_concurrent_calls_against_a_limit_of_k_exactly_k_succeed(limit: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        store = SQLiteStore(path)
        store.open()
        billing, _, raws = build(store, [100], False)
        _rules(store, billing, {"limit": limit})
        admitted: list[int] = []

        async def one(i: int) -> None:
            await asyncio.sleep(0)
            decision = billing.admit(raws[0], "cheap", 0, None)
            if isinstance(decision, Admitted):
                if decision.committed is not None:
                    await decision.committed
                admitted.append(i)
            else:
                assert decision.denial.reason == "quota_rule_exceeded"

        async def run() -> None:
            await asyncio.gather(*(one(i) for i in range(50)))

        asyncio.run(run())
        assert len(admitted) == limit
        key_hash = billing.resolve(raws[0]).key_hash  # type: ignore[union-attr]
        store.close()
        assert_on_disk(path, [key_hash], [100 - limit])


rule_doc = st.fixed_dictionaries(
    {
        "limit": st.integers(1, 12),
        "burstPercent": st.sampled_from([0, 0, 30, 100]),
        "metric": st.sampled_from(["calls", "credits"]),
        "action": st.sampled_from(["deny", "throttle", "warn"]),
    },
    optional={"tool": st.sampled_from(TOOLS)},
)
call = st.tuples(st.integers(0, 2), st.sampled_from(TOOLS), st.integers(0, 3000), st.booleans(), st.integers(0, 3))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=3, max_size=3),
    st.lists(call, max_size=40),
    st.lists(rule_doc, max_size=3),
    st.booleans(),
)
def test_credits_are_conserved_and_no_hard_cap_is_ever_passed(
    initial: list[int],
    calls: list[tuple[int, str, int, bool, int]],
    docs: list[dict[str, object]],
    refund: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        store = SQLiteStore(path)
        store.open()
        billing, _, raws = build(store, initial, refund)
        rules = _rules(store, billing, *docs)
        hard = [r for r in rules.rules if r.action != "warn"]
        moved = [0, 0, 0]  # credits taken from each key, net of refunds, as the callers saw it
        # per (rule, key): the calls and up-front credits the gate admitted under it, net of refunds
        live: dict[tuple[str, int], list[int]] = {}

        def check() -> None:
            for rule in hard:
                for who in range(3):
                    used = live.get((rule.id, who), [0, 0])
                    assert used[0 if rule.metric == "calls" else 1] <= rule.hard_cap

        async def one(who: int, tool: str, size: int, fails: bool, yields: int) -> None:
            await asyncio.sleep(0)
            decision = billing.admit(raws[who], tool, size, None)
            if not isinstance(decision, Admitted):
                assert isinstance(decision, Refused)
                return
            mine = [r for r in rules.rules if r.tool in (None, tool)]
            for rule in mine:
                entry = live.setdefault((rule.id, who), [0, 0])
                entry[0] += 1
                entry[1] += decision.charged
            check()
            if decision.committed is not None:
                await decision.committed
            moved[who] += decision.charged
            for _ in range(yields):
                await asyncio.sleep(0)
            # An output surcharge counts once taken (later calls are refused sooner) but is decided after the
            # call: the property is on what the gate admitted up front.
            settled = billing.settle(decision, fails, size)
            moved[who] += settled.surcharge - settled.refunded
            if settled.refunded:
                for rule in mine:
                    live[(rule.id, who)][0] -= 1
                    live[(rule.id, who)][1] -= settled.refunded

        async def run() -> None:
            await asyncio.gather(*(one(*c) for c in calls))

        asyncio.run(run())
        hashes = [billing.resolve(r).key_hash for r in raws]  # type: ignore[union-attr]
        store.close()
        assert_on_disk(path, hashes, [initial[i] - moved[i] for i in range(3)])
