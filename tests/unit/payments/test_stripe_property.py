"""Property: whatever Stripe sends, in any order and any number of times (payments, their replays,
refunds, disputes) and whatever the key spends in between, on the real SQLite store in memory:
- every balance equals its ledger and is never negative;
- each payment is credited once, however often (and by whichever of its events) it is announced;
- a payment is never taken back beyond its credits, and what a take-back could not take is owed:
  balance + spent - owed = initial + credited - taken back (what was asked), exactly."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.core.keys import generate_api_key, hash_key
from paygate.core.records import KeyRecord, UsageEvent
from paygate.payments.stripe_events import Payment, TakeBack, read_payment, read_take_back
from paygate.payments.stripe_ledger import OWED_DOC, PAYMENT_DOC, StripeLedger
from paygate.store.sqlite import SQLiteStore
from tests.stripe_support import charge_refunded, dispute_created, event, session_completed

PAYMENTS = 4
# (credits, amount paid in cents) per payment
payment_terms = st.lists(st.tuples(st.integers(1, 500), st.integers(1, 5000)), min_size=PAYMENTS, max_size=PAYMENTS)
action = st.one_of(
    st.tuples(st.just("pay"), st.integers(0, PAYMENTS - 1), st.booleans()),  # bool: the async event instead
    st.tuples(st.just("refund"), st.integers(0, PAYMENTS - 1), st.floats(0, 1)),  # cumulative share refunded
    st.tuples(st.just("dispute"), st.integers(0, PAYMENTS - 1), st.floats(0, 1)),
    st.tuples(st.just("replay"), st.integers(0, 10_000)),  # any event sent before, again
    st.tuples(st.just("spend"), st.integers(0, 1), st.integers(1, 200)),
)


def _key(store: SQLiteStore, credits: int) -> KeyRecord:
    raw = generate_api_key()
    record = KeyRecord(hash_key(raw), raw[:7], raw[-4:], "buyer", credits, time.time())
    store.create_key(record)
    return record


def _deliver(ledger: StripeLedger, evt: dict[str, Any]) -> None:
    payment = read_payment(evt) if evt["type"].startswith("checkout.") else None
    take_back = read_take_back(evt)
    if isinstance(payment, Payment):
        ledger.credit(payment)
    elif isinstance(take_back, TakeBack):
        ledger.take_back(take_back)


@settings(max_examples=200, deadline=None)
@given(payment_terms, st.lists(st.integers(0, 300), min_size=2, max_size=2), st.lists(action, max_size=40))
def test_stripe_credits_equal_the_ledger_and_the_balance(
    terms: list[tuple[int, int]], initial: list[int], actions: list[tuple[Any, ...]]
) -> None:
    store = SQLiteStore()
    store.open()
    try:
        ledger = StripeLedger(store, lambda *a, **k: None)
        keys = [_key(store, c) for c in initial]
        owner = [keys[i % 2] for i in range(PAYMENTS)]  # payments 0, 2 to key 0; 1, 3 to key 1
        sent: list[dict[str, Any]] = []
        spent = [0, 0]
        for act in actions:
            kind = act[0]
            if kind == "pay":
                i, async_event = act[1], act[2]
                credits, amount = terms[i]
                meta = {"paygate_key_hash": owner[i].key_hash, "paygate_credits": str(credits)}
                evt = session_completed(meta, session=f"cs_{i}", pi=f"pi_{i}", amount=amount)
                if async_event:
                    evt = event("checkout.session.async_payment_succeeded", evt["data"]["object"])
            elif kind == "refund":
                amount = terms[act[1]][1]
                evt = charge_refunded(f"pi_{act[1]}", amount, round(amount * act[2]))
            elif kind == "dispute":
                amount = terms[act[1]][1]
                evt = dispute_created(f"pi_{act[1]}", round(amount * act[2]))
            elif kind == "replay":
                if not sent:
                    continue
                evt = sent[act[1] % len(sent)]
            else:
                who, want = act[1], act[2]
                record = keys[who]
                take = min(want, record.credits)
                if take:
                    usage = UsageEvent(time.time(), record.key_hash, record.masked, "buyer", "tool", take, True, None)
                    assert store.charge(record.key_hash, take, usage).ok
                    spent[who] += take
                continue
            sent.append(evt)
            _deliver(ledger, evt)

        payments = {doc["id"]: doc for doc in store.doc_list(PAYMENT_DOC) if "primary" not in doc}
        paid_sessions = {e["data"]["object"]["id"] for e in sent if e["type"].startswith("checkout.")}
        assert set(payments) == paid_sessions  # every announced payment recorded, once
        for w, record in enumerate(keys):
            entries = store.ledger(record.key_hash)
            assert record.credits >= 0 and record.credits == sum(e.delta for e in entries)
            credited = [e.delta for e in entries if e.kind == "stripe_credit"]
            mine = [p for p in payments.values() if p["keyHash"] == record.key_hash]
            assert sorted(credited) == sorted(int(p["credits"]) for p in mine)  # each payment once, in full
            asked = 0
            for p in mine:
                reclaimed = sum(int(v) for v in p["reclaimed"].values())
                assert 0 <= reclaimed <= int(p["credits"])  # never more than the payment gave
                assert reclaimed == sum(int(v) for v in p["takeBacks"].values())
                asked += reclaimed
            taken = -sum(e.delta for e in entries if e.kind in ("stripe_refund", "stripe_dispute"))
            owed_doc = store.doc_get(OWED_DOC, record.key_hash)
            owed = int(owed_doc["owed"]) if owed_doc else 0
            assert asked == taken + owed  # what was not taken is owed, never lost
            assert record.credits + spent[w] - owed == initial[w] + sum(credited) - asked
    finally:
        store.close()
