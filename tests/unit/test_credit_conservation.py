"""Property: under any sequence of charges, refunds, surcharges and top-ups, credits are
conserved — each balance equals its ledger, never goes negative, and matches a model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.billing.outcomes import Admitted
from paygate.store.sqlite import SQLiteStore
from tests.unit.ledger_world import TOOLS, build

op = st.one_of(
    st.tuples(
        st.just("call"), st.integers(0, 2), st.sampled_from(TOOLS), st.integers(0, 5000), st.booleans(), st.booleans()
    ),
    st.tuples(st.just("topup"), st.integers(0, 2), st.integers(1, 50)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=3, max_size=3), st.lists(op, max_size=60), st.booleans())
def test_credits_are_conserved(initial: list[int], ops: list[tuple], refund: bool) -> None:  # type: ignore[type-arg]
    store = SQLiteStore()
    store.open()
    billing, keys, raws = build(store, initial, refund)
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
        assert record.total_spent == sum(
            -e.delta for e in store.ledger(record.key_hash) if e.kind in ("charge", "refund", "surcharge")
        )
    store.close()
