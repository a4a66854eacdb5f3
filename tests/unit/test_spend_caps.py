"""Spend caps (docs/money-rules.md#spend-caps): the pure check, the counts, and the property that under any
sequence of calls, refunds and caps — concurrent calls included — credits are conserved and no cap is ever
exceeded."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.billing.outcomes import Admitted, Refused
from paygate.billing.service import BillingService
from paygate.core.spend_caps import DAY, HOUR, CapFacts, CapLimits, exceeded
from paygate.events.hub import EventHub
from paygate.keys.service import KeyService
from paygate.rules.spend_caps import SpendCaps
from paygate.store.sqlite import SQLiteStore
from tests.unit.ledger_world import CALL, build, close_and_check, complete, race


def test_a_cap_of_zero_is_no_cap() -> None:
    assert exceeded(CapFacts(CapLimits(), 10**9, 10**9, 10**9, 10**9), 10**6) is None


def test_each_cap_refuses_the_call_that_would_pass_it_and_no_earlier_one() -> None:
    lim = CapLimits(server_daily_credits=10)
    assert exceeded(CapFacts(lim, server_credits=7), 3) is None
    cap, detail = exceeded(CapFacts(lim, server_credits=7), 4) or ("", "")
    assert cap == "server_daily_credit_cap" and detail == "7+4 would exceed 10 credits/day (server-wide)"
    assert exceeded(CapFacts(CapLimits(server_daily_calls=2), server_calls=1), 5) is None
    assert (exceeded(CapFacts(CapLimits(server_daily_calls=2), server_calls=2), 0) or ("",))[0] == (
        "server_daily_call_cap"
    )
    assert (exceeded(CapFacts(CapLimits(hourly_calls=1), key_calls=1), 0) or ("",))[0] == "hourly_call_cap"
    assert (exceeded(CapFacts(CapLimits(hourly_credits=5), key_credits=3), 3) or ("",))[0] == "hourly_credit_cap"


def test_server_caps_are_named_before_a_keys_own() -> None:
    facts = CapFacts(CapLimits(1, 1, 1, 1), 1, 1, 1, 1)
    assert (exceeded(facts, 1) or ("",))[0] == "server_daily_credit_cap"


def _world(store: SQLiteStore, initial: list[int], refund: bool) -> tuple[BillingService, KeyService, list[str]]:
    return build(store, initial, refund)


def _caps(store: SQLiteStore, billing: BillingService, keys: KeyService, **doc: int | str) -> SpendCaps:
    caps = SpendCaps(store, EventHub(), keys, billing.facts, dict(doc))
    caps.load(time.time())
    billing.after_denial.append(caps.on_denial)
    return caps


def test_counts_roll_over_with_the_hour_and_the_day(memory_store: SQLiteStore) -> None:
    billing, keys, _ = _world(memory_store, [5], False)
    caps = _caps(memory_store, billing, keys, hourlyCallLimit=1, serverDailyCallCap=5)
    now = 1_700_000_000.0
    caps.add("k", 1, 3, now)
    facts = caps.facts("k", now)
    assert facts is not None and (facts.key_calls, facts.server_calls, facts.server_credits) == (1, 1, 3)
    later = caps.facts("k", now + HOUR)
    assert later is not None and later.key_calls == 0 and later.server_calls == 1  # same day, next hour
    tomorrow = caps.facts("k", now + DAY)
    assert tomorrow is not None and tomorrow.server_calls == 0 and tomorrow.key_calls == 0
    caps.remove("k", 5, 50, now + DAY)  # never below zero
    again = caps.facts("k", now + DAY)
    assert again is not None and again.server_calls == 0


def test_no_cap_means_the_gate_never_asks(memory_store: SQLiteStore) -> None:
    billing, keys, raws = _world(memory_store, [5], False)
    caps = _caps(memory_store, billing, keys)
    assert billing.facts.caps is None
    caps.configure({"serverDailyCallCap": 1}, "admin", time.time())
    assert billing.facts.caps is caps
    assert isinstance(billing.admit(raws[0], "cheap", 0, None), Admitted)
    refused = billing.admit(raws[0], "cheap", 0, None)
    assert isinstance(refused, Refused) and refused.denial.reason == "spend_cap_exceeded"
    caps.configure({"serverDailyCallCap": 0}, "admin", time.time())
    assert billing.facts.caps is None


@pytest.mark.parametrize("cap", [1, 7, 25])
def test_many_concurrent_calls_against_a_cap_of_n_exactly_n_succeed(cap: int) -> None:
    """Fifty calls by three keys at once, each awaiting its group commit: exactly `cap` are admitted, the
    others refused before any charge, and the disk agrees."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        store = SQLiteStore(path)
        store.open()
        billing, keys, raws = _world(store, [100, 100, 100], False)
        _caps(store, billing, keys, serverDailyCallCap=cap)
        admitted, reasons = race(billing, raws)
        assert len(admitted) == cap and reasons <= {"spend_cap_exceeded"}
        close_and_check(store, path, billing, raws, [100 - admitted.count(i) for i in range(3)])


cap_value = st.sampled_from([0, 0, 1, 2, 5, 9, 20])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=3, max_size=3),
    st.lists(CALL, max_size=40),
    st.tuples(cap_value, cap_value, cap_value, cap_value),
    st.booleans(),
)
def test_credits_are_conserved_and_no_cap_is_ever_exceeded(
    initial: list[int],
    calls: list[tuple[int, str, int, bool, int]],
    limits: tuple[int, int, int, int],
    refund: bool,
) -> None:
    server_credits, server_calls, hourly_calls, hourly_credits = limits
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        store = SQLiteStore(path)
        store.open()
        billing, keys, raws = _world(store, initial, refund)
        _caps(
            store,
            billing,
            keys,
            serverDailyCreditCap=server_credits,
            serverDailyCallCap=server_calls,
            hourlyCallLimit=hourly_calls,
            hourlyCreditLimit=hourly_credits,
        )
        moved = [0, 0, 0]  # credits taken from each key, net of refunds, as the callers saw it
        live = {"calls": 0, "credits": 0}  # the server-wide counts the caps apply to, as the test sees them
        per_key = [[0, 0], [0, 0], [0, 0]]  # each key's (calls, credits), net of refunds

        def check() -> None:
            assert not server_credits or live["credits"] <= server_credits
            assert not server_calls or live["calls"] <= server_calls
            for calls_, credits in per_key:
                assert not hourly_calls or calls_ <= hourly_calls
                assert not hourly_credits or credits <= hourly_credits

        async def one(who: int, tool: str, size: int, fails: bool, yields: int) -> None:
            await asyncio.sleep(0)
            decision = billing.admit(raws[who], tool, size, None)
            if not isinstance(decision, Admitted):
                assert isinstance(decision, Refused)
                return
            live["calls"] += 1
            live["credits"] += decision.charged
            per_key[who][0] += 1
            per_key[who][1] += decision.charged
            check()
            # An output surcharge counts toward the caps once taken (so later calls are refused sooner), but
            # it is decided after the call: the property is on what the gate admitted, up front.
            settled = await complete(billing, decision, fails, size, yields)
            moved[who] += decision.charged + settled.surcharge - settled.refunded
            if settled.refunded:
                live["calls"] -= 1
                live["credits"] -= settled.refunded
                per_key[who][0] -= 1
                per_key[who][1] -= settled.refunded

        async def run() -> None:
            await asyncio.gather(*(one(*c) for c in calls))

        # One hour of calls at most (the test runs in well under that); a rollover would only lower counts.
        asyncio.run(run())
        close_and_check(store, path, billing, raws, [initial[i] - moved[i] for i in range(3)])
