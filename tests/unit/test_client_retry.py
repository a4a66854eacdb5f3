"""The pay-and-retry rule of AsyncPayGateClient.call_tool, without a gateway: the hook is asked at most
once per call, the call is attempted at most twice, and only True or a mapping means retry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from mcp.types import CallToolResult, TextContent

from paygate.client import AclDenied, AsyncPayGateClient, InsufficientCredits, MissingApiKey, PayGateError

PAID = CallToolResult(content=[TextContent(type="text", text="done")])


class Scripted(AsyncPayGateClient):
    """Answers each attempt from a script (an error to raise, or the result) and records the `_meta` sent."""

    def __init__(self, script: list[PayGateError | CallToolResult], hook: Any) -> None:
        super().__init__("http://127.0.0.1:1", api_key="pg_x", on_payment_required=hook)
        self.script = script
        self.sent: list[dict[str, Any]] = []

    async def _call_once(
        self, name: str, arguments: Mapping[str, Any] | None, meta: Mapping[str, Any]
    ) -> CallToolResult:
        self.sent.append(dict(meta))
        step = self.script.pop(0)
        if isinstance(step, PayGateError):
            raise step
        return step


def unpaid() -> InsufficientCredits:
    return InsufficientCredits(-32402, "Insufficient credits", {"reason": "insufficient_credits"})


@pytest.mark.parametrize(
    ("decision", "retried_meta"), [(True, {"trace": "t"}), ({}, {"trace": "t"}), ({"x402/payment": {"p": 1}}, None)]
)
async def test_true_or_a_mapping_retries_once(decision: object, retried_meta: dict[str, Any] | None) -> None:
    asked: list[PayGateError] = []

    async def hook(denied: PayGateError) -> object:
        asked.append(denied)
        return decision

    client = Scripted([unpaid(), PAID], hook)
    assert await client.call_tool("t", {}, meta={"trace": "t"}) is PAID
    assert len(asked) == 1 and len(client.sent) == 2
    assert client.sent[1] == (retried_meta if retried_meta is not None else {"trace": "t", "x402/payment": {"p": 1}})


@pytest.mark.parametrize("decision", [False, None, "yes", 1])
async def test_anything_else_raises_the_denial_without_a_retry(decision: object) -> None:
    first = unpaid()
    client = Scripted([first], lambda denied: decision)
    with pytest.raises(InsufficientCredits) as raised:
        await client.call_tool("t")
    assert raised.value is first and len(client.sent) == 1


async def test_a_hook_that_always_says_retry_gets_two_attempts_and_the_second_denial() -> None:
    asked: list[PayGateError] = []
    second = unpaid()
    client = Scripted([unpaid(), second, PAID], lambda denied: asked.append(denied) or True)
    with pytest.raises(InsufficientCredits) as raised:
        await client.call_tool("t")
    assert raised.value is second and len(asked) == 1 and len(client.sent) == 2
    assert await client.call_tool("t") is PAID  # the next logical call starts afresh


async def test_other_denials_never_reach_the_hook_unless_they_carry_an_x402_offer() -> None:
    def hook(denied: PayGateError) -> bool:
        raise AssertionError("not a payment denial")

    client = Scripted([AclDenied(-32402, "no", {"reason": "tool_not_allowed"})], hook)
    with pytest.raises(AclDenied):
        await client.call_tool("t")
    offer = MissingApiKey(402, "pay", {"reason": "missing_api_key", "paymentRequired": {"accepts": []}})
    client = Scripted([offer, PAID], lambda denied: {"x402/payment": {"p": 2}})
    assert await client.call_tool("t") is PAID and client.sent == [{}, {"x402/payment": {"p": 2}}]


async def test_without_a_hook_the_denial_is_raised_at_once() -> None:
    client = Scripted([unpaid()], None)
    with pytest.raises(InsufficientCredits):
        await client.call_tool("t")
    assert len(client.sent) == 1
