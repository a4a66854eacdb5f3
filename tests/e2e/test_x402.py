"""x402 pay-per-call through the real CLI, driven by the official `mcp` SDK client with no API key: told
what to pay, pays in the request's `_meta` (the x402 MCP transport), gets the result and the receipt; the
payment is used once, also after a restart on the same state file; the paid call is in the usage log as
the payer's, and no key is charged. The facilitator is the stand-in of tests/x402_facilitator.py (a real
one needs a blockchain)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_sdk_client import sdk_client
from tests.support import ECHO_COMMAND, Gateway, running_gateway
from tests.x402_facilitator import PAY_TO, Facilitator, payment

pytestmark = pytest.mark.e2e
ADMIN = "x402-e2e-admin-key-0123456789"


@pytest.fixture
def facilitator() -> Iterator[Facilitator]:
    f = Facilitator()
    yield f
    f.stop()


def gateway(tmp_path: Path, facilitator: Facilitator) -> Any:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"x402": {"payTo": PAY_TO, "facilitatorUrl": facilitator.url}}))
    state = str(tmp_path / "state.db")
    return running_gateway("--server", ECHO_COMMAND, "--config", str(config), state_file=state, admin_key=ADMIN)


async def paid_echo(gw: Gateway, pay: dict[str, Any] | None) -> Any:
    async with sdk_client(gw, {}, "legacy") as client:
        return await client.call_tool("echo", {"text": "paid for"}, meta={"x402/payment": pay} if pay else None)


async def test_the_sdk_pays_per_call_once_and_a_restart_keeps_the_payment_spent(
    tmp_path: Path, facilitator: Facilitator
) -> None:
    with gateway(tmp_path, facilitator) as gw:
        key = gw.create_key(10)
        asked = await paid_echo(gw, None)
        assert asked.is_error and asked.structured_content is not None
        [offer] = asked.structured_content["accepts"]
        assert offer["payTo"] == PAY_TO and offer["amount"] == "10000"
        pay = payment(offer)
        answer = await paid_echo(gw, pay)
        assert not answer.is_error and "paid for" in str(answer.content)
        receipt = (answer.meta or {}).get("x402/payment-response")
        assert receipt is not None and receipt["success"] is True
        replayed = await paid_echo(gw, pay)
        assert replayed.is_error and (replayed.meta or {})["paygate/deny"]["reason"] == "payment_replayed"
        usage = gw.client.get("/usage", headers=gw.admin()).json()
        rows = usage["events"] if isinstance(usage, dict) else usage
        mine = [r for r in rows if str(r.get("keyName", "")) == "x402" and r.get("allowed")]
        assert len(mine) == 1 and mine[0]["creditsCharged"] == 1
        assert gw.balance(key) == 10
    with gateway(tmp_path, facilitator) as again:
        replayed = await paid_echo(again, pay)
        assert replayed.is_error and (replayed.meta or {})["paygate/deny"]["reason"] == "payment_replayed"
    assert len(facilitator.settled) == 1  # settled once, across both runs
