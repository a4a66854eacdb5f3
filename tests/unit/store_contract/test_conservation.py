"""Property: through the `Store` protocol alone, random sequences of money moves never lose or invent a
credit, on every implementation. A model predicts each move's outcome (refused exactly when the balance
cannot cover it); after every move each balance matches the model, is never negative, equals the sum of its
ledger, and the ledger as a whole adds up to the total balance. Durable stores hold the same after a reopen.

(`tests/unit/test_money_conservation.py` checks the services built on top: reservations, rotation listeners,
crashes; this one pins the store's own contract, so a new store implementation is checked by it too.)
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paygate.store.base import Store
from tests.unit.store_contract.conftest import IMPLEMENTATIONS, call, key

HOLDER = st.integers(0, 2)
AMOUNT = st.integers(0, 40)
MOVES = st.one_of(
    st.tuples(st.just("charge"), HOLDER, AMOUNT),
    st.tuples(st.just("charge_many"), HOLDER, st.lists(AMOUNT, max_size=4)),
    st.tuples(st.just("charge_up_to"), HOLDER, AMOUNT),
    st.tuples(st.just("refund"), HOLDER, st.integers(1, 40)),
    st.tuples(st.just("topup"), HOLDER, st.integers(1, 40)),
    st.tuples(st.just("reserve"), HOLDER, st.integers(1, 40)),
    st.tuples(st.just("transfer"), st.tuples(HOLDER, HOLDER), st.integers(1, 40)),
    st.tuples(st.just("rekey"), HOLDER, st.just(0)),
)


def check(store: Store, hashes: list[str], model: list[int]) -> None:
    for h, expected in zip(hashes, model, strict=True):
        record = store.get_key(h)
        assert record is not None and record.credits == expected >= 0
        assert sum(e.delta for e in store.ledger(h)) == expected
    live = {r.key_hash: r.credits for r in store.list_keys()}
    assert sum(e.delta for e in store.ledger()) == sum(live.values()) == sum(model)


def apply(store: Store, hashes: list[str], model: list[int], move: tuple[str, object, object]) -> None:
    op, who, amount = move
    if op == "transfer":
        assert isinstance(who, tuple) and isinstance(amount, int)
        src, dst = who
        moved = store.transfer(hashes[src], hashes[dst], amount, "t")
        ok = src != dst and model[src] >= amount
        assert (moved is not None) == ok
        if ok:
            model[src] -= amount
            model[dst] += amount
            assert moved == (model[src], model[dst])
        return
    assert isinstance(who, int)
    h, balance = hashes[who], model[who]
    if op == "charge":
        assert isinstance(amount, int)
        result = store.charge(h, amount, call(h, amount))
        assert result.ok == (balance >= amount)
        model[who] -= amount if result.ok else 0
    elif op == "charge_many":
        assert isinstance(amount, list)
        result = store.charge_many(h, [(a, call(h, a)) for a in amount])
        assert result.ok == (balance >= sum(amount))
        model[who] -= sum(amount) if result.ok else 0
    elif op == "charge_up_to":
        assert isinstance(amount, int)
        taken, after = store.charge_up_to(h, amount, "s")
        assert taken == min(amount, balance)
        model[who] -= taken
        assert after == model[who]
    elif op == "reserve":
        assert isinstance(amount, int)
        result = store.adjust(h, -amount, "reserve", "r")
        assert result.ok == (balance >= amount)
        model[who] -= amount if result.ok else 0
    elif op in ("refund", "topup"):
        assert isinstance(amount, int)
        result = store.refund(h, amount, "r") if op == "refund" else store.topup(h, amount, "t")
        assert result.ok
        model[who] += amount
    else:  # rekey: the holder's credits move to a new key, which becomes the holder's live key
        fresh = key(credits=0)
        store.rekey(h, fresh)
        hashes[who] = fresh.key_hash
        old = store.get_key(h)
        assert old is not None and old.credits == 0 and not old.active
        return
    if op != "charge_up_to":
        assert result.balance == model[who]


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.e2e] if i.server else []) for n, i in sorted(IMPLEMENTATIONS.items())]
)
# `request` is only read for the session's redis-server, the same for every example
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=st.lists(st.integers(0, 50), min_size=3, max_size=3), moves=st.lists(MOVES, max_size=25))
def test_credits_are_conserved(
    name: str, initial: list[int], moves: list[tuple[str, object, object]], request: pytest.FixtureRequest
) -> None:
    implementation = IMPLEMENTATIONS[name]
    url = str(request.getfixturevalue("redis_url")) if implementation.server else ""
    directory = Path(tempfile.mkdtemp(prefix="paygate_contract_"))
    store = implementation.make(directory, url)
    store.open()
    try:
        records = [key(credits=c) for c in initial]
        for r in records:
            store.create_key(r)
        hashes, model = [r.key_hash for r in records], list(initial)
        for move in moves:
            apply(store, hashes, model, move)
            check(store, hashes, model)
        if implementation.durable:
            store.close()
            store = implementation.make(directory, url)
            store.open()
            check(store, hashes, model)
    finally:
        store.close()
        shutil.rmtree(directory, ignore_errors=True)
