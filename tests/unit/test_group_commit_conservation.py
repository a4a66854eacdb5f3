"""Property: with journalled charges and concurrent calls that await between steps, credits are
conserved on disk — after a clean stop or a crash (the files left as a `kill -9` leaves them), the
reopened file's every balance equals what the callers were told, equals its ledger, and is never
negative."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.billing.outcomes import Admitted
from paygate.billing.service import BillingService
from paygate.keys.service import KeyService
from paygate.store.sqlite import SQLiteStore
from tests.unit.ledger_world import TOOLS, assert_on_disk, build, complete
from tests.unit.test_group_commit import crash

call = st.tuples(st.integers(0, 2), st.sampled_from(TOOLS), st.integers(0, 4000), st.booleans(), st.integers(0, 3))


async def run_calls(
    billing: BillingService,
    keys: KeyService,
    raws: list[str],
    calls: list[tuple[int, str, int, bool, int]],
    topups: list[tuple[int, int]],
) -> list[int]:
    moved = [0, 0, 0]  # net credits taken from each key, as the callers saw it

    async def one(who: int, tool: str, size: int, fails: bool, yields: int) -> None:
        decision = billing.admit(raws[who], tool, size, None)
        if not isinstance(decision, Admitted):
            return
        settled = await complete(billing, decision, fails, size, yields)
        moved[who] += decision.charged + settled.surcharge - settled.refunded

    async def top(who: int, amount: int) -> None:
        await asyncio.sleep(0)
        keys.topup(raws[who], amount)

    await asyncio.gather(*(one(*c) for c in calls), *(top(*t) for t in topups))
    return moved


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 30), min_size=3, max_size=3),
    st.lists(call, max_size=40),
    st.lists(st.tuples(st.integers(0, 2), st.integers(1, 20)), max_size=5),
    st.booleans(),
    st.booleans(),
)
def test_concurrent_journalled_calls_conserve_credits(
    initial: list[int],
    calls: list[tuple[int, str, int, bool, int]],
    topups: list[tuple[int, int]],
    refund: bool,
    crashed: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        store = SQLiteStore(path)
        store.open()
        billing, keys, raws = build(store, initial, refund)
        moved = asyncio.run(run_calls(billing, keys, raws, calls, topups))
        hashes = [billing.resolve(r).key_hash for r in raws]  # type: ignore[union-attr]
        if crashed:
            crash(store)
        else:
            store.close()
        topped = [sum(amount for who, amount in topups if who == i) for i in range(3)]
        assert_on_disk(path, hashes, [initial[i] + topped[i] - moved[i] for i in range(3)])
