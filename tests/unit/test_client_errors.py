"""paygate.client's typed errors: one class per deny reason, mapped from `error.data.reason`."""

from __future__ import annotations

import pytest

from paygate.client import errors as client_errors
from paygate.client.errors import (
    ERRORS_BY_REASON,
    AclDenied,
    AuthenticationError,
    InsufficientCredits,
    PayGateError,
    QuotaExceeded,
    RateLimited,
    TeamQuotaExceeded,
    ToolRateLimited,
    UnknownTool,
    error_from,
)
from paygate.core.errors import DENY_REASONS, PAYMENT_REQUIRED


@pytest.mark.parametrize("reason", sorted(DENY_REASONS))
def test_every_deny_reason_of_the_gateway_has_its_own_class(reason: str) -> None:
    entry = DENY_REASONS[reason]
    err = error_from(entry.code, entry.message, {"reason": reason, "httpStatus": entry.http_status})
    assert type(err) is not PayGateError and type(err).reason_name == reason
    assert (err.code, err.reason, err.http_status, err.message) == (
        entry.code,
        reason,
        entry.http_status,
        entry.message,
    )


def test_no_two_reasons_share_a_class_and_every_class_is_exported() -> None:
    classes = list(ERRORS_BY_REASON.values())
    assert len(set(classes)) == len(classes)
    exported = {getattr(client_errors, c.__name__) for c in classes}
    assert exported == set(classes)
    import paygate.client as package

    assert all(getattr(package, c.__name__) is c for c in classes)


def test_the_names_the_brief_promises() -> None:
    assert ERRORS_BY_REASON["tool_not_allowed"] is AclDenied
    assert ERRORS_BY_REASON["insufficient_credits"] is InsufficientCredits
    assert issubclass(ERRORS_BY_REASON["api_key_expired"], AuthenticationError)
    assert ERRORS_BY_REASON["invalid_api_key"].__name__ == "InvalidApiKey"
    assert ERRORS_BY_REASON["key_suspended"].__name__ == "KeySuspended"
    assert issubclass(ToolRateLimited, RateLimited) and issubclass(TeamQuotaExceeded, QuotaExceeded)


def test_a_denial_carries_the_price_and_the_balance() -> None:
    data = {
        "reason": "insufficient_credits",
        "httpStatus": 402,
        "tool": "add",
        "creditsRequired": 2,
        "creditsRemaining": 1,
    }
    err = error_from(PAYMENT_REQUIRED, "Insufficient credits (need 2, have 1)", data)
    assert isinstance(err, InsufficientCredits)
    assert (err.tool, err.credits_required, err.credits_remaining) == ("add", 2, 1)
    assert err.data == data and err.payment_required is None
    assert "InsufficientCredits" in repr(err) and "insufficient_credits" in repr(err)


def test_x402_payment_required_is_reachable_from_the_denial() -> None:
    asked = {"x402Version": 2, "accepts": [{"scheme": "exact"}]}
    err = error_from(402, "payment required", {"reason": "insufficient_credits", "paymentRequired": asked})
    assert isinstance(err, InsufficientCredits) and err.payment_required == asked


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"retryAfterSeconds": 42}, 42.0),
        ({"retryAfterSeconds": 1.5}, 1.5),
        ({}, None),
        ({"retryAfterSeconds": True}, None),
    ],
)
def test_rate_limited_says_when_to_retry(data: dict[str, object], expected: float | None) -> None:
    err = error_from(PAYMENT_REQUIRED, "Rate limit exceeded", {"reason": "rate_limited", **data})
    assert isinstance(err, RateLimited) and err.retry_after == expected


@pytest.mark.parametrize("data", [None, "text", ["reason"], {"reason": 7}, {"reason": "a_reason_from_the_future"}, {}])
def test_anything_else_is_the_base_error_with_what_was_given(data: object) -> None:
    err = error_from(-32603, "Internal error", data)
    assert type(err) is PayGateError and err.code == -32603 and str(err) == "Internal error"
    assert err.reason == (data["reason"] if isinstance(data, dict) and isinstance(data.get("reason"), str) else None)
    assert err.credits_remaining is None and err.http_status is None


def test_numbers_that_are_not_integers_are_not_credits() -> None:
    err = error_from(
        PAYMENT_REQUIRED, "x", {"reason": "insufficient_credits", "creditsRemaining": True, "creditsRequired": "2"}
    )
    assert err.credits_remaining is None and err.credits_required is None


def test_an_unknown_tool_without_data_is_still_unknown_tool() -> None:
    err = error_from(-32602, "Unknown tool: nope", None)
    assert isinstance(err, UnknownTool) and err.reason == "unknown_tool" and err.data == {}
    assert type(error_from(-32602, "Invalid params: a is required", None)) is PayGateError
