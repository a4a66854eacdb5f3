"""The little world the credit-conservation properties run in: three keys, three tools."""

from __future__ import annotations

from pathlib import Path

from paygate.billing.service import BillingService
from paygate.core.pricing import PriceBook, ToolPrice
from paygate.keys.service import KeyService
from paygate.metrics import Metrics
from paygate.store.sqlite import SQLiteStore

TOOLS = ["cheap", "dear", "sized"]  # default price 1; 7 flat; 1 + 2/KB in + 3/KB out


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
