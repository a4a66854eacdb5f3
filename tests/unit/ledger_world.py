"""The little world the credit-conservation properties run in: three keys, three tools."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import strategies as st

from paygate.billing.outcomes import Admitted, Refused, Settlement
from paygate.billing.service import BillingService
from paygate.core.pricing import PriceBook, ToolPrice
from paygate.keys.service import KeyService
from paygate.metrics import Metrics
from paygate.store.sqlite import SQLiteStore

TOOLS = ["cheap", "dear", "sized"]  # default price 1; 7 flat; 1 + 2/KB in + 3/KB out
# One call: (key index, tool, input and output bytes, whether it fails, how many steps it stays at the backend)
CALL = st.tuples(st.integers(0, 2), st.sampled_from(TOOLS), st.integers(0, 3000), st.booleans(), st.integers(0, 3))


def build(store: SQLiteStore, initial: list[int], refund: bool) -> tuple[BillingService, KeyService, list[str]]:
    prices = PriceBook(
        1, 0, {"dear": ToolPrice(7), "sized": ToolPrice(1, credits_per_kb_input=2, credits_per_kb_output=3)}
    )
    billing = BillingService(store, prices, Metrics(), shadow=False, refund_on_failure=refund)
    keys = KeyService(store)
    return billing, keys, [keys.create(f"k{i}", c).raw for i, c in enumerate(initial)]


def assert_on_disk(path: Path, hashes: list[str], expected: list[int]) -> None:
    """Reopened from `path`, each key's balance is what its callers were told (`expected`), is never
    negative, and equals the sum of its ledger."""
    reopened = SQLiteStore(path)
    reopened.open()
    try:
        for key_hash, credits in zip(hashes, expected, strict=True):
            record = reopened.get_key(key_hash)
            assert record is not None
            assert record.credits == credits >= 0
            assert record.credits == sum(e.delta for e in reopened.ledger(key_hash))
    finally:
        reopened.close()


async def complete(billing: BillingService, decision: Admitted, fails: bool, size: int, yields: int) -> Settlement:
    """The rest of an admitted call as the dispatcher runs it: on disk first, then at the backend while
    `yields` other steps run, then settled. The key gave `decision.charged + surcharge - refunded`."""
    if decision.committed is not None:
        await decision.committed
    for _ in range(yields):  # other calls run while this one is "at the backend"
        await asyncio.sleep(0)
    return billing.settle(decision, fails, size)


def race(billing: BillingService, raws: list[str], calls: int = 50) -> tuple[list[int], set[str]]:
    """`calls` calls of `cheap` at once, by the keys in turn, each awaiting its group commit: the index of
    the key of each admitted call, and the reasons the others were refused with."""
    admitted: list[int] = []
    reasons: set[str] = set()

    async def one(i: int) -> None:
        await asyncio.sleep(0)
        decision = billing.admit(raws[i % len(raws)], "cheap", 0, None)
        if isinstance(decision, Refused):
            reasons.add(decision.denial.reason)
            return
        if decision.committed is not None:  # group commit: on disk before the call would run
            await decision.committed
        admitted.append(i % len(raws))

    async def run() -> None:
        await asyncio.gather(*(one(i) for i in range(calls)))

    asyncio.run(run())
    return admitted, reasons


def close_and_check(
    store: SQLiteStore, path: Path, billing: BillingService, raws: list[str], expected: list[int]
) -> None:
    """Close the store, then `assert_on_disk` for the keys `raws` (in order) with balances `expected`."""
    hashes = [billing.resolve(r).key_hash for r in raws]  # type: ignore[union-attr]
    store.close()
    assert_on_disk(path, hashes, expected)
