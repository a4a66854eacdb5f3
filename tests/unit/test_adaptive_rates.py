"""Adaptive rates (docs/money-rules.md#adaptive-rates): how a key is judged, with the service's clock set."""

from __future__ import annotations

import pytest

from paygate.billing.outcomes import Admitted, Refused
from paygate.core.domain_errors import Invalid
from paygate.events.hub import Event, EventHub
from paygate.rules.adaptive import AdaptiveRates, checked
from paygate.store.sqlite import SQLiteStore
from tests.unit.ledger_world import build

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _service(store: SQLiteStore, **changes: object) -> tuple[AdaptiveRates, Clock]:
    billing, _, _ = build(store, [10], False)
    adaptive = AdaptiveRates(store, EventHub(), billing.facts)
    clock = Clock()
    adaptive.clock = clock
    adaptive.load()
    adaptive.configure({"enabled": True, "minCalls": 4, "cooldownSeconds": 60, **changes}, "admin")
    return adaptive, clock


def _calls(adaptive: AdaptiveRates, key: str, *failed: bool) -> None:
    for f in failed:
        adaptive.record(Event("gate.allow", "k", {"keyMasked": "pg_…", "failed": f}, key_hash=key))


def test_a_boosted_key_that_fails_is_tightened_at_once(memory_store: SQLiteStore) -> None:
    adaptive, clock = _service(memory_store)
    _calls(adaptive, "k", False, False, False, False)
    assert adaptive.limit("k", 10) == 15
    clock.now += 10
    _calls(adaptive, "k", True, True, True, False)
    assert adaptive.limit("k", 10) == 5
    clock.now += 61
    assert adaptive.limit("k", 10) == 10  # the cooldown is over: the key's own limit


def test_a_tightened_key_is_not_boosted_before_its_cooldown(memory_store: SQLiteStore) -> None:
    adaptive, clock = _service(memory_store)
    _calls(adaptive, "k", True, True, True, True)
    _calls(adaptive, "k", False, False, False, False)
    assert adaptive.limit("k", 10) == 5
    clock.now += 61
    _calls(adaptive, "k", False)  # judged afresh on the calls since: five clean calls now
    assert adaptive.limit("k", 10) == 15


def test_old_calls_leave_the_window_and_few_calls_are_not_judged(memory_store: SQLiteStore) -> None:
    adaptive, clock = _service(memory_store, windowSeconds=30, boostFactor=1.0)
    _calls(adaptive, "k", True, True, True)
    clock.now += 31
    _calls(adaptive, "k", True, False, False)  # the old errors have left: 1 in 3 calls, too few to judge
    assert adaptive.limit("k", 10) == 10
    _calls(adaptive, "k", False)  # 1 in 4: under the threshold, and no boost configured
    assert adaptive.limit("k", 10) == 10 and adaptive.view()["adjusted"] == []


def test_never_below_one_call_a_minute_and_off_means_no_source(memory_store: SQLiteStore) -> None:
    adaptive, _ = _service(memory_store, tightenFactor=0.01)
    _calls(adaptive, "k", True, True, True, True)
    assert adaptive.limit("k", 10) == 1
    adaptive.configure({"enabled": False}, "admin")
    assert adaptive.gate_facts.adaptive is None and adaptive.view()["trackedKeys"] == 0


def test_the_rate_decision_applies_the_adjusted_limit(memory_store: SQLiteStore) -> None:
    billing, _, raws = build(memory_store, [100], False)
    billing.prices.global_rate_limit = 4
    adaptive = AdaptiveRates(memory_store, EventHub(), billing.facts)
    adaptive.load()
    adaptive.configure({"enabled": True, "minCalls": 2, "tightenFactor": 0.5}, "admin")
    key = billing.resolve(raws[0])
    assert key is not None
    _calls(adaptive, key.key_hash, True, True)
    first = billing.admit(raws[0], "cheap", 0, None)
    assert isinstance(first, Admitted) and first.rate is not None and first.rate.limit == 2
    assert isinstance(billing.admit(raws[0], "cheap", 0, None), Admitted)
    refused = billing.admit(raws[0], "cheap", 0, None)
    assert isinstance(refused, Refused) and refused.denial.reason == "rate_limited"


def test_checked_bounds() -> None:
    assert checked({"tightenFactor": 1, "boostFactor": 2}) == {"tightenFactor": 1.0, "boostFactor": 2.0}
    for bad in ({"minCalls": 1.5}, {"enabled": 1}, {"boostFactor": True}, {"x": 1}):
        with pytest.raises(Invalid):
            checked(bad)
