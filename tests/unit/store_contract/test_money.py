"""Money: every move's result, its ledger entries and usage rows, and the never-below-zero rule; a refused
move changes nothing. Deferred charges are durable once their future resolves (at once when there is none)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from paygate.core.records import KeyRecord
from paygate.store.base import Store
from tests.unit.store_contract.conftest import balanced, call, key


def funded(store: Store, credits: int = 10) -> str:
    record: KeyRecord = key(credits=credits)
    store.create_key(record)
    return record.key_hash


def kinds(store: Store, h: str) -> list[tuple[int, str, int]]:
    return [(e.delta, e.kind, e.balance_after) for e in store.ledger(h)]


def test_charge_takes_the_amount_and_records_the_call(store: Store) -> None:
    h = funded(store)
    result = store.charge(h, 3, call(h, 3))
    assert result.ok and result.balance == 7
    record = store.get_key(h)
    assert record is not None and (record.total_spent, record.total_calls) == (3, 1)
    assert kinds(store, h) == [(10, "create", 10), (-3, "charge", 7)]
    assert [(u.key_hash, u.credits, u.allowed) for u in store.query_usage()] == [(h, 3, True)]
    assert balanced(store, h) == 7


def test_a_charge_the_balance_cannot_cover_is_refused_and_changes_nothing(store: Store) -> None:
    h = funded(store, 2)
    result = store.charge(h, 3, call(h, 3))
    assert not result.ok and result.balance == 2
    assert len(store.ledger(h)) == 1 and store.query_usage() == []
    assert not store.charge("unknown", 1, call("unknown", 1)).ok


def test_a_free_call_is_recorded_without_a_ledger_entry(store: Store) -> None:
    h = funded(store, 0)
    assert store.charge(h, 0, call(h, 0)).ok
    assert len(store.query_usage()) == 1 and store.ledger(h) == []


def test_charge_many_is_all_or_nothing_with_an_entry_per_call(store: Store) -> None:
    h = funded(store, 10)
    refused = store.charge_many(h, [(4, call(h, 4)), (7, call(h, 7))])
    assert not refused.ok and refused.balance == 10 and store.query_usage() == []
    done = store.charge_many(h, [(4, call(h, 4, "a")), (0, call(h, 0, "b")), (5, call(h, 5, "c"))])
    assert done.ok and done.balance == 1
    assert kinds(store, h)[1:] == [(-4, "charge", 6), (-5, "charge", 1)]
    assert [u.tool for u in store.query_usage()] == ["a", "b", "c"]
    record = store.get_key(h)
    assert record is not None and record.total_calls == 3 and balanced(store, h) == 1


async def test_deferred_charges_apply_at_once_and_are_durable_when_the_future_resolves(store: Store) -> None:
    h = funded(store, 5)
    first, done1 = store.charge_deferred(h, 2, call(h, 2))
    second, done2 = store.charge_deferred(h, 2, call(h, 2))
    refused, none = store.charge_deferred(h, 2, call(h, 2))  # 1 left: decided in memory, no await needed
    assert (first.balance, second.balance) == (3, 1) and first.ok and second.ok
    assert not refused.ok and refused.balance == 1 and none is None
    await asyncio.gather(*(d for d in (done1, done2) if d is not None))  # None: durable already
    assert kinds(store, h)[1:] == [(-2, "charge", 3), (-2, "charge", 1)] and balanced(store, h) == 1


async def test_deferred_batches_are_all_or_nothing(store: Store) -> None:
    h = funded(store, 5)
    refused, none = store.charge_many_deferred(h, [(3, call(h, 3)), (3, call(h, 3))])
    assert not refused.ok and none is None
    result, done = store.charge_many_deferred(h, [(3, call(h, 3)), (2, call(h, 2))])
    assert result.ok and result.balance == 0
    if done is not None:
        await done
    assert len(store.query_usage(key_hash=h)) == 2 and balanced(store, h) == 0


def test_outside_an_event_loop_deferred_charges_are_plain_charges(store: Store) -> None:
    h = funded(store, 5)
    result, done = store.charge_deferred(h, 2, call(h, 2))
    assert result.ok and done is None and balanced(store, h) == 3


def test_refund_and_topup_add_credits_with_their_kind(store: Store) -> None:
    h = funded(store, 10)
    store.charge(h, 4, call(h, 4))
    assert store.refund(h, 3, "failed call").balance == 9
    assert store.topup(h, 5, "stripe").balance == 14
    assert kinds(store, h)[2:] == [(3, "refund", 9), (5, "topup", 14)]
    assert store.ledger(h)[-1].memo == "stripe"
    record = store.get_key(h)
    assert record is not None and record.total_spent == 1  # a refund gives back what was spent
    assert record.total_calls == 0  # and the call it refunds (never below zero)
    assert store.refund(h, 1, "again").ok and store.get_key(h).total_calls == 0  # type: ignore[union-attr]
    assert not store.topup("unknown", 1, "x").ok


def test_adjust_never_goes_below_zero(store: Store) -> None:
    h = funded(store, 5)
    assert store.adjust(h, -5, "reserve", "r1").balance == 0
    refused = store.adjust(h, -1, "reserve", "r2")
    assert not refused.ok and refused.balance == 0
    assert store.adjust(h, 2, "release", "r1").balance == 2
    assert kinds(store, h)[1:] == [(-5, "reserve", 0), (2, "release", 2)]


def test_charge_up_to_takes_what_the_balance_allows(store: Store) -> None:
    h = funded(store, 4)
    assert store.charge_up_to(h, 3, "output") == (3, 1)
    assert store.charge_up_to(h, 10, "output") == (1, 0)
    assert store.charge_up_to(h, 10, "output") == (0, 0)
    assert kinds(store, h)[1:] == [(-3, "surcharge", 1), (-1, "surcharge", 0)]
    record = store.get_key(h)
    assert record is not None and record.total_spent == 4
    assert store.charge_up_to("unknown", 1, "x") == (0, 0)


def test_transfer_moves_credits_between_keys_or_nothing(store: Store) -> None:
    a, b = funded(store, 10), funded(store, 1)
    assert store.transfer(a, b, 4, "gift") == (6, 5)
    assert store.transfer(a, b, 7, "too much") is None
    assert store.transfer(a, a, 1, "self") is None
    assert store.transfer(a, "unknown", 1, "x") is None
    assert store.transfer(a, b, 0, "nothing") is None
    assert kinds(store, a)[1:] == [(-4, "transfer_out", 6)] and kinds(store, b)[1:] == [(4, "transfer_in", 5)]
    assert balanced(store, a) == 6 and balanced(store, b) == 5


def test_rekey_moves_balance_and_usage_and_retires_the_old_key(store: Store) -> None:
    old = key(credits=8, alias="shop")
    store.create_key(old)
    store.charge(old.key_hash, 3, call(old.key_hash, 3))
    new = key(credits=0)
    g = store.generation
    store.rekey(old.key_hash, new)
    retired, successor = store.get_key(old.key_hash), store.get_key(new.key_hash)
    assert retired is not None and successor is not None
    assert not retired.active and retired.credits == 0 and retired.alias is None
    assert retired.extra["rotatedTo"] == new.key_hash
    assert successor.credits == 5 and successor.alias == "shop" and successor.active
    assert kinds(store, old.key_hash)[-1] == (-5, "rotate_out", 0)
    assert kinds(store, new.key_hash) == [(5, "rotate_in", 5)]
    assert [u.key_hash for u in store.query_usage()] == [new.key_hash]
    assert store.generation > g
    assert balanced(store, old.key_hash) == 0 and balanced(store, new.key_hash) == 5


def test_money_survives_a_reopen(store: Store, reopen: Callable[[], Store]) -> None:
    a, b = funded(store, 10), funded(store, 0)
    store.charge(a, 2, call(a, 2))
    store.transfer(a, b, 3, "x")
    store.refund(a, 1, "y")
    again = reopen()
    assert balanced(again, a) == 6 and balanced(again, b) == 3
    record = again.get_key(a)
    assert record is not None and (record.total_calls, record.total_spent) == (0, 1)  # the refund took the call back


async def test_acknowledged_deferred_charges_survive_a_reopen(store: Store, reopen: Callable[[], Store]) -> None:
    h = funded(store, 5)
    _, done = store.charge_deferred(h, 4, call(h, 4))
    if done is not None:
        await done
    again = reopen()
    assert balanced(again, h) == 1 and len(again.query_usage()) == 1


def test_a_ledger_page_is_one_keys_newest_entries_bounded_and_resumable(store: Store) -> None:
    h = funded(store)
    other = funded(store, 5)
    for amount in (1, 2, 3, 4):
        store.topup(h, amount, "t")
    assert store.ledger_count(h) == 5 and store.ledger_count(other) == 1
    page = store.ledger_page(h, 2)
    assert [e.delta for _, e in page] == [4, 3]
    assert all(e.key_hash == h for _, e in page)
    rest = store.ledger_page(h, 10, before=page[-1][0])
    assert [e.delta for _, e in rest] == [2, 1, 10]
    assert store.ledger_page(h, 10, since=page[0][1].timestamp + 1) == []
    assert store.ledger_page("unknown", 10) == []


def test_a_topup_below_a_threshold_happens_only_while_below_it(store: Store) -> None:
    h = funded(store, 3)
    assert store.topup_below(h, 10, 5, "auto-topup").balance == 13
    refused = store.topup_below(h, 10, 5, "auto-topup")  # 13 >= 5: a second racer adds nothing
    assert not refused.ok and refused.balance == 13
    assert kinds(store, h) == [(3, "create", 3), (10, "topup", 13)] and balanced(store, h) == 13
    assert not store.topup_below("unknown", 1, 5, "x").ok
