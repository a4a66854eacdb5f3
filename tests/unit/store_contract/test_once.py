"""Money.move_once: a move applied at most once per outside id, recorded in the move's transaction; a
take-back takes at most the balance and says what it could not take (store/once.py)."""

from __future__ import annotations

from collections.abc import Callable

from paygate.store.base import Store
from tests.unit.store_contract.conftest import balanced, key


def funded(store: Store, credits: int) -> str:
    record = key(credits=credits)
    store.create_key(record)
    return record.key_hash


def test_a_credit_applies_once_per_id_and_is_a_ledger_entry(store: Store) -> None:
    h = funded(store, 5)
    first = store.move_once(h, 100, "stripe_credit", "evt_1 cs_1", "evt_1")
    assert (first.outcome, first.requested, first.moved, first.balance) == ("applied", 100, 100, 105)
    again = store.move_once(h, 100, "stripe_credit", "evt_1 cs_1", "evt_1")
    assert (again.outcome, again.requested, again.moved, again.balance) == ("duplicate", 100, 100, 105)
    entries = [(e.delta, e.kind, e.balance_after, e.memo) for e in store.ledger(h)]
    assert entries == [(5, "create", 5, None), (100, "stripe_credit", 105, "evt_1 cs_1")]
    assert balanced(store, h) == 105


def test_a_take_back_takes_at_most_the_balance_and_never_below_zero(store: Store) -> None:
    h = funded(store, 30)
    taken = store.move_once(h, -50, "stripe_refund", "evt_r", "evt_r")
    assert (taken.outcome, taken.requested, taken.moved, taken.balance, taken.short) == ("applied", -50, -30, 0, 20)
    assert balanced(store, h) == 0
    nothing = store.move_once(h, -5, "stripe_dispute", "evt_d", "evt_d")
    assert (nothing.outcome, nothing.moved, nothing.short) == ("applied", 0, 5)  # recorded, no ledger entry
    assert len(store.ledger(h)) == 2
    assert store.move_once(h, -5, "stripe_dispute", "evt_d", "evt_d").outcome == "duplicate"
    assert balanced(store, h) == 0


def test_the_id_is_one_across_keys_and_an_unknown_key_records_nothing(store: Store) -> None:
    a, b = funded(store, 1), funded(store, 1)
    missing = store.move_once("unknown", 10, "stripe_credit", "m", "evt_x")
    assert (missing.outcome, missing.moved, missing.balance) == ("no_key", 0, 0)
    assert store.move_once(a, 10, "stripe_credit", "m", "evt_x").outcome == "applied"  # not taken by the miss
    assert store.move_once(b, 10, "stripe_credit", "m", "evt_x").outcome == "duplicate"
    assert balanced(store, a) == 11 and balanced(store, b) == 1


def test_the_record_of_an_id_survives_a_restart(store: Store, reopen: Callable[[], Store]) -> None:
    h = funded(store, 0)
    store.move_once(h, 7, "stripe_credit", "m", "evt_keep")
    again = reopen()
    assert again.move_once(h, 7, "stripe_credit", "m", "evt_keep").outcome == "duplicate"
    assert balanced(again, h) == 7
