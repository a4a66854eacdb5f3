"""BillingService.admit / settle on a real (in-memory) SQLite store."""

from __future__ import annotations

import time

import pytest

from paygate.billing.outcomes import Admitted, Refused
from paygate.billing.service import BillingService
from paygate.core.pricing import PriceBook, ToolPrice
from paygate.keys.service import KeyService
from paygate.metrics import Metrics
from paygate.store.sqlite import SQLiteStore


@pytest.fixture
def store(memory_store: SQLiteStore) -> SQLiteStore:
    return memory_store


def service(store: SQLiteStore, *, shadow: bool = False, refund: bool = False, limit: int = 2) -> BillingService:
    prices = PriceBook(1, limit, {"dear": ToolPrice(5), "capped": ToolPrice(1, rate_limit_per_min=1)})
    return BillingService(store, prices, Metrics(), shadow=shadow, refund_on_failure=refund)


def test_a_denial_after_the_rate_step_gives_the_slot_back(store: SQLiteStore) -> None:
    billing = service(store)
    raw = KeyService(store).create("k", 1).raw
    first = billing.admit(raw, "add", 0, None)
    assert isinstance(first, Admitted) and first.rate is not None and first.rate.remaining == 1
    broke = billing.admit(raw, "add", 0, None)
    assert isinstance(broke, Refused) and broke.denial.reason == "insufficient_credits"
    assert broke.rate is not None and broke.rate.remaining == 1  # the refused call did not use a slot
    KeyService(store).topup(raw, 5)
    assert isinstance(billing.admit(raw, "add", 0, None), Admitted)
    limited = billing.admit(raw, "add", 0, None)
    assert isinstance(limited, Refused) and limited.denial.reason == "rate_limited"


def test_per_tool_limit_denial_returns_the_global_slot(store: SQLiteStore) -> None:
    billing = service(store, limit=10)
    raw = KeyService(store).create("k", 10).raw
    assert isinstance(billing.admit(raw, "capped", 0, None), Admitted)
    second = billing.admit(raw, "capped", 0, None)
    assert isinstance(second, Refused) and second.denial.reason == "tool_rate_limited"
    other = billing.admit(raw, "add", 0, None)
    assert isinstance(other, Admitted) and other.rate is not None and other.rate.remaining == 8


def test_shadow_mode_admits_denials_once_and_charges_nothing(store: SQLiteStore) -> None:
    billing = service(store, shadow=True)
    raw = KeyService(store).create("k", 0).raw
    decision = billing.admit(raw, "dear", 0, None)
    assert isinstance(decision, Admitted)
    assert decision.shadow_reason == "shadow:insufficient_credits" and decision.charged == 0
    anonymous = billing.admit(None, "dear", 0, None)
    assert isinstance(anonymous, Admitted) and anonymous.shadow_reason == "shadow:missing_api_key"
    rich = KeyService(store).create("r", 10).raw
    ok = billing.admit(rich, "dear", 0, None)
    assert isinstance(ok, Admitted) and ok.shadow_reason is None and ok.charged == 0
    assert billing.resolve(rich).credits == 10  # type: ignore[union-attr]


def test_shadow_mode_logs_every_call_with_what_the_gate_would_have_said(store: SQLiteStore) -> None:
    """The reference: "Log everything without enforcing payment"; a would-be denial carries its reason."""
    billing = service(store, shadow=True)
    keys = KeyService(store)
    poor, rich = keys.create("poor", 0).raw, keys.create("rich", 10).raw
    billing.admit(poor, "dear", 0, "req_poor")
    billing.admit(rich, "dear", 0, "req_rich")
    rows = [(e.key_name, e.allowed, e.credits, e.deny_reason, e.request_id) for e in store.query_usage()]
    assert rows == [
        ("poor", True, 0, "shadow:insufficient_credits", "req_poor"),
        ("rich", True, 0, "shadow", "req_rich"),
    ]
    rich_record = billing.resolve(rich)
    assert rich_record is not None and (rich_record.credits, rich_record.total_calls) == (10, 0)  # observed only
    assert store.usage_sums(0.0) == {}  # shadow rows never count toward quotas


def test_a_refund_rolls_back_total_spent_total_calls_and_the_quota(store: SQLiteStore) -> None:
    """The reference: "credits are refunded and totalSpent / totalCalls are rolled back"."""
    billing = service(store, refund=True, limit=0)
    raw = KeyService(store).create("k", 20).raw
    kept = billing.admit(raw, "dear", 0, None)
    failed = billing.admit(raw, "dear", 0, None)
    assert isinstance(kept, Admitted) and isinstance(failed, Admitted)
    billing.settle(kept, False, 0)
    assert billing.settle(failed, True, 0).refunded == 5
    record = billing.resolve(raw)
    assert record is not None and (record.credits, record.total_spent, record.total_calls) == (15, 5, 1)
    used = billing.quotas.snapshot(record.key_hash, time.time())
    assert (used.day_calls, used.day_credits, used.month_calls, used.month_credits) == (1, 5, 1, 5)
    assert store.usage_sums(0.0) == {record.key_hash: (1, 5)}  # a restart rebuilds the same counters
    billing.quotas.rebuild(store, time.time())
    rebuilt = billing.quotas.snapshot(record.key_hash, time.time())
    assert (rebuilt.day_calls, rebuilt.day_credits) == (1, 5)


def test_refund_and_surcharge_settlement(store: SQLiteStore) -> None:
    billing = service(store, refund=True, limit=0)
    raw = KeyService(store).create("k", 10).raw
    failed = billing.admit(raw, "dear", 0, None)
    assert isinstance(failed, Admitted)
    assert billing.settle(failed, True, 0).refunded == 5
    assert billing.resolve(raw).credits == 10  # type: ignore[union-attr]
    ok = billing.admit(raw, "dear", 0, None)
    assert isinstance(ok, Admitted)
    assert billing.settle(ok, False, 0).refunded == 0
    assert billing.resolve(raw).credits == 5  # type: ignore[union-attr]


def test_denials_of_known_keys_are_recorded_as_usage(store: SQLiteStore) -> None:
    billing = service(store)
    raw = KeyService(store).create("k", 0).raw
    billing.admit(raw, "add", 0, "req_1")
    billing.admit(None, "add", 0, "req_2")  # no key: nothing to attribute it to
    events = store.query_usage()
    assert [(e.allowed, e.deny_reason, e.request_id) for e in events] == [(False, "insufficient_credits", "req_1")]


def test_a_call_that_never_reached_the_backend_is_refunded_whatever_the_policy(store: SQLiteStore) -> None:
    billing = service(store, refund=False, limit=0)
    raw = KeyService(store).create("k", 10).raw
    undelivered = billing.admit(raw, "dear", 0, None)
    assert isinstance(undelivered, Admitted)
    assert billing.settle(undelivered, True, 0, delivered=False).refunded == 5
    delivered_failure = billing.admit(raw, "dear", 0, None)
    assert isinstance(delivered_failure, Admitted)
    assert billing.settle(delivered_failure, True, 0).refunded == 0  # it may have run: the policy decides
    assert billing.resolve(raw).credits == 5  # type: ignore[union-attr]


def test_a_call_in_flight_while_its_key_is_rotated_settles_on_the_new_key(store: SQLiteStore) -> None:
    import dataclasses

    from paygate.core.keys import generate_api_key, hash_key, mask_parts

    billing = BillingService(
        store,
        PriceBook(3, 0, {"big": ToolPrice(1, credits_per_kb_output=1)}),
        Metrics(),
        shadow=False,
        refund_on_failure=True,
    )
    raw = KeyService(store).create("k", 10).raw
    failing, surcharged = billing.admit(raw, "add", 0, None), billing.admit(raw, "big", 0, None)
    assert isinstance(failing, Admitted) and isinstance(surcharged, Admitted)
    old = store.get_key(hash_key(raw))
    assert old is not None and old.credits == 6
    for _ in range(2):  # rotated twice while both calls run
        fresh = generate_api_key()
        prefix, last4 = mask_parts(fresh)
        current = billing.current(old)
        store.rekey(
            current.key_hash,
            dataclasses.replace(
                current, key_hash=hash_key(fresh), prefix=prefix, last4=last4, extra=dict(current.extra)
            ),
        )
    live = billing.current(old)
    assert live.active and live.key_hash != old.key_hash and live.credits == 6
    assert billing.settle(failing, True, 0).refunded == 3
    assert billing.settle(surcharged, False, 2048).surcharge == 2
    assert live.credits == 7 and failing.key is live
    assert old.credits == 0 and sum(e.delta for e in store.ledger(old.key_hash)) == 0
