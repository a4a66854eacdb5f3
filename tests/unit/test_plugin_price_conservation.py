"""Property: whatever price a plugin's transform_price sets (negative, zero, huge), the charge goes
through the ledger like any other: it is exactly the clamped price, a call the key cannot pay is refused
with nothing taken, and on disk every balance equals what the callers were told, equals its ledger, and
is never negative."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.billing.outcomes import Admitted, Refused
from paygate.billing.service import BillingService
from paygate.plugins import CallInfo, Plugin
from paygate.plugins.loader import Loaded
from paygate.plugins.runner import PluginRunner
from paygate.store.sqlite import SQLiteStore
from tests.unit.ledger_world import TOOLS, assert_on_disk, build

# who, tool, input size, the price the plugin answers (None: keep), fails at the backend
call = st.tuples(
    st.integers(0, 2), st.sampled_from(TOOLS), st.integers(0, 3000), st.none() | st.integers(-100, 100), st.booleans()
)


class Scripted(Plugin):
    name = "scripted"

    def __init__(self) -> None:
        self.next: Any = None

    async def transform_price(self, info: CallInfo, price: int) -> int | None:
        return self.next  # type: ignore[no-any-return]


async def run_calls(
    billing: BillingService, raws: list[str], calls: list[tuple[int, str, int, int | None, bool]]
) -> list[int]:
    plugin = Scripted()
    runner = PluginRunner(
        [Loaded(plugin, "scripted", "0", {"transform_price": plugin.transform_price}, 1.0, frozenset(), "t")]
    )
    moved = [0, 0, 0]
    for who, tool, size, answer, fails in calls:
        plugin.next = answer
        key = billing.resolve(raws[who])
        assert key is not None
        before = key.credits
        quote = billing.quote(key, tool, size)
        price_set = await runner.transform_price(CallInfo(tool, {}, None, None, "r"), lambda q=quote: q)
        expected = quote if answer is None else max(0, answer)
        assert price_set == (None if answer is None else expected)
        decision = billing.admit(raws[who], tool, size, None, price_set=price_set)
        if isinstance(decision, Refused):
            assert expected > before and billing.resolve(raws[who]).credits == before  # type: ignore[union-attr]
            continue
        assert isinstance(decision, Admitted) and decision.charged == expected
        if decision.committed is not None:
            await decision.committed
        moved[who] += decision.charged
        settled = billing.settle(decision, fails, size)
        moved[who] += settled.surcharge - settled.refunded
    return moved


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=3, max_size=3), st.lists(call, max_size=30), st.booleans())
def test_any_transformed_price_conserves_credits(
    initial: list[int], calls: list[tuple[int, str, int, int | None, bool]], refund: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        store = SQLiteStore(path)
        store.open()
        billing, _, raws = build(store, initial, refund)
        moved = asyncio.run(run_calls(billing, raws, calls))
        hashes = [billing.resolve(r).key_hash for r in raws]  # type: ignore[union-attr]
        store.close()
        assert_on_disk(path, hashes, [initial[i] - moved[i] for i in range(3)])
