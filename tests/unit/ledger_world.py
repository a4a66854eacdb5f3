"""The little world the credit-conservation properties run in: three keys, three tools."""

from __future__ import annotations

from paygate.core.pricing import PriceBook, ToolPrice
from paygate.metrics import Metrics
from paygate.services.billing import BillingService
from paygate.services.keys import KeyService
from paygate.store.sqlite import SQLiteStore

TOOLS = ["cheap", "dear", "sized"]  # default price 1; 7 flat; 1 + 2/KB in + 3/KB out


def build(store: SQLiteStore, initial: list[int], refund: bool) -> tuple[BillingService, KeyService, list[str]]:
    prices = PriceBook(1, 0, {"dear": ToolPrice(7), "sized": ToolPrice(1, credits_per_kb_input=2,
                                                                       credits_per_kb_output=3)})
    billing = BillingService(store, prices, Metrics(), shadow=False, refund_on_failure=refund)
    keys = KeyService(store)
    return billing, keys, [keys.create(f"k{i}", c).raw for i, c in enumerate(initial)]
