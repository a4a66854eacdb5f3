"""Property: under any sequence of charges, refunds, surcharges and top-ups, credits are
conserved — each balance equals its ledger, never goes negative, and matches a model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.core.pricing import PriceBook, ToolPrice
from paygate.metrics import Metrics
from paygate.services.billing import Admitted, BillingService
from paygate.services.keys import KeyService
from paygate.store.sqlite import SQLiteStore

op = st.one_of(
    st.tuples(st.just("call"), st.integers(0, 2), st.sampled_from(["cheap", "dear", "sized"]),
              st.integers(0, 5000), st.booleans(), st.booleans()),
    st.tuples(st.just("topup"), st.integers(0, 2), st.integers(1, 50)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=3, max_size=3), st.lists(op, max_size=60), st.booleans())
def test_credits_are_conserved(initial: list[int], ops: list[tuple], refund: bool) -> None:  # type: ignore[type-arg]
    store = SQLiteStore()
    store.open()
    prices = PriceBook(1, 0, {"dear": ToolPrice(7), "sized": ToolPrice(1, credits_per_kb_input=2,
                                                                       credits_per_kb_output=3)})
    billing = BillingService(store, prices, Metrics(), shadow=False, refund_on_failure=refund)
    keys = KeyService(store)
    raws = [keys.create(f"k{i}", c).raw for i, c in enumerate(initial)]
    model = list(initial)

    for o in ops:
        if o[0] == "topup":
            _, who, amount = o
            keys.topup(raws[who], amount)
            model[who] += amount
            continue
        _, who, tool, size, fails, delivered = o
        decision = billing.admit(raws[who], tool, size, None)
        if not isinstance(decision, Admitted):
            continue
        assert decision.charged <= model[who]
        model[who] -= decision.charged
        settled = billing.settle(decision, fails, size, delivered=delivered or not fails)
        model[who] += settled.refunded - settled.surcharge
        assert settled.refunded in (0, decision.charged)

    for i, raw in enumerate(raws):
        record = billing.resolve(raw)
        assert record is not None
        assert record.credits == model[i] >= 0
        assert record.credits == sum(e.delta for e in store.ledger(record.key_hash))
        assert record.total_spent == sum(-e.delta for e in store.ledger(record.key_hash)
                                         if e.kind in ("charge", "refund", "surcharge"))
    store.close()
