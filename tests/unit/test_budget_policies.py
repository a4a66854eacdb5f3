"""Budget policies (docs/money-rules.md#budget-policies): the pure check, the window's counts, and the
property that under any sequence of calls, batches, refunds and policies — concurrent calls included —
credits are conserved and no deny or throttle budget is ever exceeded."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.billing.batch import BatchAdmitted, admit_batch
from paygate.billing.outcomes import Admitted, Refused
from paygate.billing.service import BillingService
from paygate.core.budgets import EXCEEDED, THROTTLED, BudgetFacts, PolicyFacts, forecast_seconds, refusal
from paygate.events.hub import EventHub
from paygate.keys.service import KeyService
from paygate.rules.budget_counts import BudgetCounts
from paygate.rules.budgets import BudgetPolicies
from paygate.store.sqlite import SQLiteStore
from tests.unit.ledger_world import TOOLS, assert_on_disk, build

T0 = 1_700_000_000.0


def _facts(action: str = "deny", **kw: int) -> BudgetFacts:
    base = dict(daily_budget=0, monthly_budget=0, burn_limit=0, window_seconds=60, day_spent=0, month_spent=0)
    base.update(kw)
    window_spent = base.pop("window_spent", 0)
    return BudgetFacts((PolicyFacts("bp_1", action, window_spent=window_spent, **base),), T0)


def test_each_limit_refuses_the_call_that_would_pass_it_and_no_earlier_one() -> None:
    assert refusal(_facts(daily_budget=10, day_spent=7), 3) is None
    hit = refusal(_facts(daily_budget=10, day_spent=7), 4)
    assert hit is not None and hit.reason == EXCEEDED and hit.detail == "7+4 would exceed 10 credits/day"
    assert (refusal(_facts(monthly_budget=5, month_spent=5), 1) or hit).detail.endswith("credits/month")
    assert refusal(_facts(burn_limit=2, window_seconds=120, window_spent=3), 1) is None  # 4 per 2-minute window
    over = refusal(_facts(burn_limit=2, window_seconds=120, window_spent=4), 1)
    assert over is not None and over.reason == EXCEEDED and over.retry_after is None


def test_throttle_says_when_the_window_has_room_again() -> None:
    counts = BudgetCounts(60)
    counts.add(3, T0)
    counts.add(2, T0 + 30)
    facts = BudgetFacts((PolicyFacts("bp_1", "throttle", 0, 0, 5, 60, 5, 5, counts.window_spent, counts),), T0 + 40)
    hit = refusal(facts, 2)
    assert hit is not None and hit.reason == THROTTLED and hit.retry_after == 21  # the T0 second leaves at T0+61
    assert refusal(facts, 6) is not None and refusal(facts, 6).reason == EXCEEDED  # type: ignore[union-attr]
    assert counts.seconds_until_freed(4, T0 + 40) == 51  # both seconds must leave


def test_the_window_forgets_old_spend_and_refunds_take_back() -> None:
    counts = BudgetCounts(60)
    counts.add(4, T0)
    counts.roll(T0 + 60.5)
    assert counts.window_spent == 4  # second T0 is in the window until T0 + 61
    counts.roll(T0 + 61)
    assert counts.window_spent == 0 and counts.day_spent == 4
    counts.add(3, T0 + 62)
    counts.remove(5, T0 + 62)
    assert counts.window_spent == 0 and counts.day_spent == 2
    counts.roll(T0 + 86_400)
    assert counts.day_spent == 0


def test_forecast() -> None:
    assert forecast_seconds(None, 5.0) is None and forecast_seconds(10, 0.0) is None
    assert forecast_seconds(10, 2.0) == 300


def _policies(store: SQLiteStore, billing: BillingService, keys: KeyService, docs: list[dict[str, Any]]) -> None:
    policies = BudgetPolicies(store, EventHub(), keys, billing.facts)
    policies.load(time.time())
    billing.after_denial.append(policies.on_denial)
    for doc in docs:
        policies.create(doc, "admin", time.time())


call = st.tuples(st.integers(0, 2), st.sampled_from(TOOLS), st.integers(0, 3000), st.booleans(), st.integers(0, 3))
budget = st.sampled_from([0, 0, 1, 3, 8, 20])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=3, max_size=3),
    st.lists(st.one_of(call, st.lists(call, min_size=2, max_size=3)), max_size=30),
    st.tuples(budget, budget, budget),
    st.sampled_from(["deny", "throttle"]),
    st.booleans(),
)
def test_credits_are_conserved_and_no_budget_is_ever_exceeded(
    initial: list[int],
    calls: list[Any],
    limits: tuple[int, int, int],
    action: str,
    refund: bool,
) -> None:
    every_daily, key0_burn, key1_monthly = limits
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        store = SQLiteStore(path)
        store.open()
        billing, keys, raws = build(store, initial, refund)
        docs = []
        if every_daily:
            docs.append({"name": "all", "target": "*", "dailyBudget": every_daily, "action": action})
        if key0_burn:
            docs.append({"name": "k0", "target": f"key:{raws[0]}", "burnRateLimit": key0_burn, "action": action})
        if key1_monthly:
            docs.append({"name": "k1", "target": f"key:{raws[1]}", "monthlyBudget": key1_monthly, "action": action})
        _policies(store, billing, keys, docs)
        moved = [0, 0, 0]
        spent = [0, 0, 0]  # each key's up-front charges, net of refunds, as the gate counts them

        def check() -> None:
            assert not every_daily or sum(spent) <= every_daily
            assert not key0_burn or spent[0] <= key0_burn * 5  # the default 5-minute window
            assert not key1_monthly or spent[1] <= key1_monthly

        async def settle(who: int, decision: Admitted, fails: bool, size: int, yields: int) -> None:
            if decision.committed is not None:
                await decision.committed
            moved[who] += decision.charged
            for _ in range(yields):
                await asyncio.sleep(0)
            settled = billing.settle(decision, fails, size)
            moved[who] += settled.surcharge - settled.refunded
            spent[who] -= settled.refunded

        async def one(who: int, tool: str, size: int, fails: bool, yields: int) -> None:
            await asyncio.sleep(0)
            decision = billing.admit(raws[who], tool, size, None)
            if not isinstance(decision, Admitted):
                assert isinstance(decision, Refused)
                return
            spent[who] += decision.charged
            check()
            await settle(who, decision, fails, size, yields)

        async def batch(items: list[tuple[int, str, int, bool, int]]) -> None:
            await asyncio.sleep(0)
            who = items[0][0]
            decision = admit_batch(billing, raws[who], [(tool, size) for _, tool, size, _, _ in items], None)
            if not isinstance(decision, BatchAdmitted):
                return
            spent[who] += sum(c.charged for c in decision.calls)
            check()
            if decision.committed is not None:
                await decision.committed
            for c, (_, _, size, fails, yields) in zip(decision.calls, items, strict=True):
                c.committed = None
                await settle(who, c, fails, size, yields)

        async def run() -> None:
            await asyncio.gather(*(batch(c) if isinstance(c, list) else one(*c) for c in calls))

        asyncio.run(run())
        hashes = [billing.resolve(r).key_hash for r in raws]  # type: ignore[union-attr]
        store.close()
        assert_on_disk(path, hashes, [initial[i] - moved[i] for i in range(3)])
