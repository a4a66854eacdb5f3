"""Property: tools/call_batch conserves credits. Batches and single calls on three keys run concurrently
(awaiting between admission and settlement); each admitted batch takes exactly the sum of its calls'
prices at once, a refused batch changes nothing, and after refunds and surcharges every balance on
disk equals what the callers were told and its ledger, and is never negative."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from paygate.billing.batch import BatchAdmitted, admit_batch
from paygate.billing.outcomes import Admitted
from paygate.billing.service import BillingService
from paygate.core.pricing import call_price
from paygate.store.sqlite import SQLiteStore
from tests.unit.ledger_world import TOOLS, assert_on_disk, build

Call = tuple[str, int, bool]  # tool, input bytes, whether the backend fails it
call = st.tuples(st.sampled_from(TOOLS), st.integers(0, 4000), st.booleans())
work = st.tuples(st.integers(0, 2), st.lists(call, min_size=1, max_size=6), st.booleans(), st.integers(0, 3))


async def run(
    billing: BillingService, store: SQLiteStore, raws: list[str], jobs: list[tuple[int, list[Call], bool, int]]
) -> list[int]:
    moved = [0, 0, 0]  # net credits taken from each key, as the callers saw it

    async def settle(admitted: Admitted, fails: bool, size: int, who: int) -> None:
        done = billing.settle(admitted, fails, size)
        moved[who] += done.surcharge - done.refunded

    async def one(who: int, calls: list[Call], as_batch: bool, yields: int) -> None:
        if not as_batch:  # a single call, for interleaving
            tool, size, fails = calls[0]
            single = billing.admit(raws[who], tool, size, None)
            if isinstance(single, Admitted):
                if single.committed is not None:
                    await single.committed
                moved[who] += single.charged
                await settle(single, fails, size, who)
            return
        record = billing.resolve(raws[who])
        assert record is not None
        before, ledger_before = record.credits, len(store.ledger(record.key_hash))
        decision = admit_batch(billing, raws[who], [(tool, size) for tool, size, _ in calls], None)
        event("batch admitted" if isinstance(decision, BatchAdmitted) else "batch refused")
        if not isinstance(decision, BatchAdmitted):
            assert record.credits == before  # refused: nothing charged, not even for a moment
            assert len(store.ledger(record.key_hash)) == ledger_before
            return
        prices = [call_price(billing.prices.for_tool(tool), size) for tool, size, _ in calls]
        assert [a.charged for a in decision.calls] == prices
        assert before - record.credits == sum(prices)  # the whole batch, at once
        if decision.committed is not None:
            await decision.committed
        moved[who] += sum(prices)
        for _ in range(yields):  # other work runs while the batch is "at the backend"
            await asyncio.sleep(0)
        await asyncio.gather(
            *(settle(a, fails, size, who) for a, (_, size, fails) in zip(decision.calls, calls, strict=True))
        )

    await asyncio.gather(*(one(*job) for job in jobs))
    return moved


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=3, max_size=3), st.lists(work, max_size=20), st.booleans())
def test_batches_conserve_credits(
    initial: list[int], jobs: list[tuple[int, list[Call], bool, int]], refund: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        store = SQLiteStore(path)
        store.open()
        billing, _, raws = build(store, initial, refund)
        moved = asyncio.run(run(billing, store, raws, jobs))
        hashes = [billing.resolve(r).key_hash for r in raws]  # type: ignore[union-attr]
        store.close()
        assert_on_disk(path, hashes, [initial[i] - moved[i] for i in range(3)])


def test_a_refused_batch_records_every_call_as_denied_and_charges_nothing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    store.open()
    billing, _, raws = build(store, [8], refund=False)
    decision = admit_batch(billing, raws[0], [("cheap", 0), ("dear", 0), ("dear", 0)], None)  # 1 + 7 + 7 > 8
    assert not isinstance(decision, BatchAdmitted)
    assert (decision.index, decision.refused.denial.reason, decision.total) == (2, "insufficient_credits", 15)
    assert [(e.tool, e.allowed, e.deny_reason) for e in store.query_usage()] == [
        ("cheap", False, "batch_rejected"),
        ("dear", False, "batch_rejected"),
        ("dear", False, "insufficient_credits"),
    ]
    assert billing.resolve(raws[0]).credits == 8  # type: ignore[union-attr]
    store.close()
