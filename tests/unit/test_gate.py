"""The gate's checks, table-driven, in the order they run."""

from __future__ import annotations

import pytest

from paygate.core.gate import ACCESS_CHECKS, FUNDS_CHECKS, GateInput, evaluate
from paygate.core.records import KeyRecord

NOW = 1_000_000.0


def key(**kw: object) -> KeyRecord:
    base: dict[str, object] = {
        "key_hash": "h",
        "prefix": "pg_abcd",
        "last4": "wxyz",
        "name": "k",
        "credits": 10,
        "created_at": 0.0,
    }
    return KeyRecord(**{**base, **kw})  # type: ignore[arg-type]


CASES = [
    ("no key given", None, False, "add", 1, "missing_api_key"),
    ("unknown key", None, True, "add", 1, "invalid_api_key"),
    ("revoked", key(active=False), True, "add", 1, "key_revoked"),
    ("suspended", key(suspended=True), True, "add", 1, "key_suspended"),
    ("expired", key(expires_at=NOW - 1), True, "add", 1, "api_key_expired"),
    ("not yet expired", key(expires_at=NOW + 1), True, "add", 1, None),
    ("not in allow list", key(allowed_tools=["echo"]), True, "add", 1, "tool_not_allowed"),
    ("in deny list", key(denied_tools=["add"]), True, "add", 1, "tool_not_allowed"),
    ("revoked beats suspended", key(active=False, suspended=True), True, "add", 1, "key_revoked"),
    ("fine", key(), True, "add", 1, None),
]


@pytest.mark.parametrize(("label", "record", "given", "tool", "price", "expected"), CASES, ids=[c[0] for c in CASES])
def test_access_checks(
    label: str, record: KeyRecord | None, given: bool, tool: str, price: int, expected: str | None
) -> None:
    denial = evaluate(GateInput(record, given, tool, price, NOW), ACCESS_CHECKS)
    assert (denial.reason if denial else None) == expected


FUNDS = [
    ("enough", key(credits=5), 5, None),
    ("one short", key(credits=4), 5, "insufficient_credits"),
    ("spending limit reached", key(credits=100, spending_limit=10, total_spent=8), 3, "spending_limit_exceeded"),
    ("spending limit exactly met", key(credits=100, spending_limit=10, total_spent=7), 3, None),
    (
        "credits checked before spending limit",
        key(credits=1, spending_limit=1, total_spent=1),
        3,
        "insufficient_credits",
    ),
]


@pytest.mark.parametrize(("label", "record", "price", "expected"), FUNDS, ids=[c[0] for c in FUNDS])
def test_funds_checks(label: str, record: KeyRecord, price: int, expected: str | None) -> None:
    denial = evaluate(GateInput(record, True, "add", price, NOW), FUNDS_CHECKS)
    assert (denial.reason if denial else None) == expected
    if denial is not None:
        assert denial.text.startswith(expected or "")
