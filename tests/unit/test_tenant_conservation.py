"""Tenants (docs/tenants.md) and money: under any sequence of concurrent calls, refunds, tenant limits and a
suspension, credits are conserved (every balance on disk is what its callers were told and the sum of its
ledger) and the tenant's limits are never exceeded; concurrent calls against a tenant's daily call limit of
n admit exactly n."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.billing.outcomes import Admitted, Refused
from paygate.billing.service import BillingService
from paygate.core.records import KeyRecord
from paygate.keys.service import KeyService
from paygate.policy.tenants import Tenants
from paygate.store.sqlite import SQLiteStore
from tests.unit.ledger_world import CALL, build, close_and_check, complete, race


def _tenant(billing: BillingService, keys: KeyService, raws: list[str], bound: int, **fields: object) -> Tenants:
    """A tenant holding the first `bound` keys (the others stay outside it)."""
    tenants = Tenants(keys, billing.quotas)
    tenant = tenants.create({"name": "T", **fields}, "test")
    for raw in raws[:bound]:
        record = billing.resolve(raw)
        assert isinstance(record, KeyRecord)
        tenants.bind(tenant["id"], record, "test")
    return tenants


@pytest.mark.parametrize("limit", [1, 7, 25])
def test_concurrent_calls_against_a_tenants_daily_call_limit_of_n_admit_exactly_n(limit: int) -> None:
    """Fifty calls by the tenant's three keys at once, each awaiting its group commit: exactly `limit` are
    admitted and charged, the rest refused with `tenant_quota_exceeded` before any charge; the disk agrees."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        store = SQLiteStore(path)
        store.open()
        billing, keys, raws = build(store, [100, 100, 100], False)
        _tenant(billing, keys, raws, 3, quota={"dailyCalls": limit, "monthlyCalls": 0, "dailyCredits": 0})
        admitted, reasons = race(billing, raws)
        assert len(admitted) == limit and reasons == {"tenant_quota_exceeded"}
        close_and_check(store, path, billing, raws, [100 - admitted.count(i) for i in range(3)])


limit_value = st.sampled_from([0, 0, 1, 2, 5, 9, 20])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=3, max_size=3),
    st.lists(CALL, max_size=40),
    st.tuples(limit_value, limit_value, limit_value),
    st.integers(0, 3),
    st.booleans(),
    st.integers(-1, 40),
)
def test_credits_are_conserved_and_the_tenants_limits_hold(
    initial: list[int],
    calls: list[tuple[int, str, int, bool, int]],
    limits: tuple[int, int, int],
    bound: int,
    refund: bool,
    suspend_at: int,
) -> None:
    """Keys 0 … bound-1 are the tenant's. `suspend_at`: after that many calls started the tenant is
    suspended (-1: never), after which none of its keys is admitted."""
    daily_calls, daily_credits, rate = limits
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        store = SQLiteStore(path)
        store.open()
        billing, keys, raws = build(store, initial, refund)
        quota = {"dailyCalls": daily_calls, "monthlyCalls": 0, "dailyCredits": daily_credits, "monthlyCredits": 0}
        tenants = _tenant(billing, keys, raws, bound, quota=quota, rateLimitPerMin=rate)
        tenant_id = tenants.report(0)["tenants"][0]["id"]
        moved = [0, 0, 0]  # credits taken from each key, net of refunds, as the callers saw it
        live = {"calls": 0, "credits": 0, "admitted": 0}  # the tenant's counts (net of refunds), admissions
        state = {"started": 0, "suspended": False}

        async def one(who: int, tool: str, size: int, fails: bool, yields: int) -> None:
            await asyncio.sleep(0)
            if state["started"] == suspend_at and not state["suspended"]:
                tenants.set_status(tenant_id, "suspended", "test")
                state["suspended"] = True
            state["started"] += 1
            decision = billing.admit(raws[who], tool, size, None)
            mine = who < bound
            if not isinstance(decision, Admitted):
                assert isinstance(decision, Refused)
                return
            assert not (mine and state["suspended"]), "a suspended tenant's key was admitted"
            if mine:
                live["calls"] += 1
                live["credits"] += decision.charged
                live["admitted"] += 1
                assert not daily_calls or live["calls"] <= daily_calls
                assert not daily_credits or live["credits"] <= daily_credits
                assert not rate or live["admitted"] <= rate  # all within one minute
            settled = await complete(billing, decision, fails, size, yields)
            moved[who] += decision.charged + settled.surcharge - settled.refunded
            if mine and settled.refunded:
                live["calls"] -= 1
                live["credits"] -= settled.refunded

        async def run() -> None:
            await asyncio.gather(*(one(*c) for c in calls))

        asyncio.run(run())
        close_and_check(store, path, billing, raws, [initial[i] - moved[i] for i in range(3)])
