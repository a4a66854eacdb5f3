"""The funds checks of a tools/call_batch (core/batch_gate.py) and the batch's shape (mcp/call_batch.py)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from paygate.core.batch_gate import first_unaffordable, projected
from paygate.core.gate import GateInput
from paygate.core.policy import EffectivePolicy
from paygate.core.quota import Counter
from paygate.core.records import KeyRecord
from paygate.mcp.call_batch import MAX_BATCH_CALLS, BatchCall, parse_calls

NOW = 1_000_000.0


def key(**kw: Any) -> KeyRecord:
    return KeyRecord(
        **{"key_hash": "h", "prefix": "pg_abcd", "last4": "wxyz", "name": "k", "credits": 10, "created_at": 0.0, **kw}
    )


def policy(**kw: Any) -> EffectivePolicy:
    return EffectivePolicy(
        **{
            "allowed_tools": frozenset(),
            "denied_tools": frozenset(),
            "ip_allowlist": (),
            "rate_limit_per_min": None,
            "quota": None,
            "quota_source": "none",
            "spending_limit": 0,
            "tool_prices": {},
            "credit_multiplier": Fraction(1),
            **kw,
        }
    )


def batch(record: KeyRecord, prices: list[int], **kw: Any) -> list[GateInput]:
    return [GateInput(record, True, f"tool{i}", p, NOW, **kw) for i, p in enumerate(prices)]


def test_a_batch_whose_sum_the_credits_cover_passes() -> None:
    assert first_unaffordable(batch(key(credits=10), [5, 3, 2])) is None


def test_the_call_that_tips_the_sum_over_the_balance_is_named() -> None:
    found = first_unaffordable(batch(key(credits=10), [5, 3, 5, 1]))
    assert found is not None
    index, denial = found
    assert (index, denial.reason) == (2, "insufficient_credits")
    assert denial.detail == "need 5, have 2, after 2 earlier call(s) of this batch costing 8"


def test_the_first_call_alone_is_refused_without_mention_of_earlier_calls() -> None:
    found = first_unaffordable(batch(key(credits=1), [5, 1]))
    assert found is not None and found[0] == 0 and found[1].detail == "need 5, have 1"


def test_the_spending_limit_applies_to_the_batch_as_a_whole() -> None:
    found = first_unaffordable(batch(key(credits=100, spending_limit=10, total_spent=4), [3, 3, 1]))
    assert found is not None and found[0] == 2 and found[1].reason == "spending_limit_exceeded"


def test_a_daily_call_quota_counts_every_call_of_the_batch() -> None:
    used = Counter("1970-01-12", "1970-01", day_calls=1)
    inputs = batch(key(credits=100), [1, 1, 1], policy=policy(quota={"dailyCallLimit": 3}), quota_used=used)
    found = first_unaffordable(inputs)
    assert found is not None and found[0] == 2 and found[1].reason == "quota_exceeded"
    assert used.day_calls == 1  # the projection never touches the live counter


def test_a_team_budget_applies_to_the_batch_as_a_whole() -> None:
    inputs = batch(key(credits=100), [4, 4], team={"budget": 10}, team_spent=3)
    found = first_unaffordable(inputs)
    assert found is not None and found[0] == 1 and found[1].reason == "team_budget_exceeded"


def test_a_projection_leaves_the_live_key_alone() -> None:
    record = key(credits=10, total_spent=1)
    g = projected(GateInput(record, True, "t", 1, NOW), 2, 7)
    assert g.key is not None and (g.key.credits, g.key.total_spent) == (3, 8)
    assert (record.credits, record.total_spent) == (10, 1)


def test_well_formed_calls_are_parsed_in_order_with_what_the_client_sent() -> None:
    calls = parse_calls({"calls": [{"name": "a", "arguments": {"x": 1}}, {"name": "b"}]})
    assert calls == [BatchCall("a", {"name": "a", "arguments": {"x": 1}}), BatchCall("b", {"name": "b"})]


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        (None, "needs params.calls"),
        ({"calls": {"name": "a"}}, "needs params.calls"),
        ({"calls": []}, "at least one call"),
        ({"calls": [{"name": "a"}] * (MAX_BATCH_CALLS + 1)}, f"at most {MAX_BATCH_CALLS} calls"),
        ({"calls": ["a"]}, "calls[0] needs a name"),
        ({"calls": [{"name": "a"}, {"name": 3}]}, "calls[1] needs a name"),
        ({"calls": [{"name": "a", "arguments": None}]}, "calls[0].arguments must be an object"),
    ],
)
def test_a_malformed_batch_is_explained(params: Any, complaint: str) -> None:
    found = parse_calls(params)
    assert isinstance(found, str) and complaint in found


def test_a_batch_of_exactly_the_limit_is_accepted() -> None:
    assert len(parse_calls({"calls": [{"name": "a"}] * MAX_BATCH_CALLS})) == MAX_BATCH_CALLS
