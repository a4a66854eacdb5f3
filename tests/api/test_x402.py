"""x402 pay-per-call on /mcp (mcp/x402_calls.py, x402/service.py) against the stand-in facilitator
(tests/x402_facilitator.py): a call without a key or credits is told what to pay; a paid call is
verified, run, settled after success and answered with the receipt; a payment is used once; a failed
tool settles nothing; a failed settlement withholds the result; no key is ever charged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, wait_until
from tests.x402_facilitator import PAY_TO, Facilitator, header, payment


@pytest.fixture(scope="module")
def facilitator() -> Iterator[Facilitator]:
    f = Facilitator()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def gw(facilitator: Facilitator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = tmp_path_factory.mktemp("x402") / "config.json"
    config.write_text(json.dumps({"x402": {"payTo": PAY_TO, "facilitatorUrl": facilitator.url}}))
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", str(config)) as g:
        yield g


def call(
    gw: InProcessGateway,
    name: str,
    arguments: dict[str, Any],
    *,
    key: str | None = None,
    pay: dict[str, Any] | None = None,
    pay_header: dict[str, Any] | None = None,
) -> Any:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if pay is not None:
        params["_meta"] = {"x402/payment": pay}
    headers = {"X-PAYMENT": header(pay_header)} if pay_header is not None else None
    return gw.rpc("tools/call", params, key=key, headers=headers)


def asked(gw: InProcessGateway, name: str = "echo", key: str | None = None) -> dict[str, Any]:
    result = call(gw, name, {"text": "hi"}, key=key).json()["result"]
    assert result["isError"] is True
    return dict(result["structuredContent"]["accepts"][0])


def test_a_call_without_a_key_is_told_what_to_pay(gw: InProcessGateway) -> None:
    result = call(gw, "echo", {"text": "hi"}).json()["result"]
    required = result["structuredContent"]
    assert result["isError"] is True and required["x402Version"] == 2
    assert json.loads(result["content"][0]["text"]) == required  # the spec: the same object as text
    (offer,) = required["accepts"]
    # 1 credit at 100 credits per dollar is one cent: 10,000 units of a 6-decimal token
    assert offer == {
        "scheme": "exact",
        "network": "eip155:84532",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "amount": "10000",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"},
    }
    assert required["resource"]["url"] == "mcp://tool/echo"
    assert result["_meta"]["paygate/deny"]["reason"] == "missing_api_key"


def test_a_key_without_credits_is_told_what_to_pay_and_keyed_calls_are_untouched(gw: InProcessGateway) -> None:
    poor = gw.create_key(0)
    assert asked(gw, key=poor)["amount"] == "10000"
    rich = gw.create_key(5)
    reply = call(gw, "echo", {"text": "hi"}, key=rich).json()
    assert "x402/payment-response" not in reply["result"].get("_meta", {}) and gw.balance(rich) == 4


def test_pay_and_call_returns_the_result_and_the_receipt_and_charges_no_key(
    gw: InProcessGateway, facilitator: Facilitator
) -> None:
    poor = gw.create_key(0)
    settled = len(facilitator.settled)
    resp = call(gw, "echo", {"text": "paid"}, key=poor, pay=payment(asked(gw)))
    result = resp.json()["result"]
    assert result.get("isError") is not True and "paid" in json.dumps(result["content"])
    receipt = result["_meta"]["x402/payment-response"]
    assert receipt["success"] is True and receipt["transaction"].startswith("0x")
    assert resp.headers["x-payment-response"]  # base64 of the same receipt
    assert len(facilitator.settled) == settled + 1
    assert gw.balance(poor) == 0
    wait_until(lambda: any(e["data"]["tool"] == "echo" for e in gw.events("x402.settled")))
    assert gw.events("x402.settled")[-1]["actor"] == "x402:0x857b06519e91e3a54538791bdbb0e22373e36b66"


def test_the_x_payment_header_pays_too(gw: InProcessGateway) -> None:
    resp = call(gw, "echo", {"text": "header"}, pay_header=payment(asked(gw)))
    assert resp.json()["result"]["_meta"]["x402/payment-response"]["success"] is True


def test_a_payment_is_used_once(gw: InProcessGateway) -> None:
    paid = payment(asked(gw))
    assert call(gw, "echo", {"text": "1"}, pay=paid).json()["result"].get("isError") is not True
    again = call(gw, "echo", {"text": "2"}, pay=paid).json()["result"]
    assert again["isError"] is True and again["_meta"]["paygate/deny"]["reason"] == "payment_replayed"


def test_concurrent_reuse_of_one_payment_runs_the_tool_once(gw: InProcessGateway, facilitator: Facilitator) -> None:
    paid = payment(asked(gw))
    settled = len(facilitator.settled)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: call(gw, "echo", {"text": str(i)}, pay=paid).json()["result"], range(8)))
    ok = [r for r in replies if r.get("isError") is not True]
    assert len(ok) == 1 and len(facilitator.settled) == settled + 1
    assert all(r["_meta"]["paygate/deny"]["reason"] == "payment_replayed" for r in replies if r not in ok)


def test_a_failed_tool_settles_nothing_and_frees_the_payment(gw: InProcessGateway, facilitator: Facilitator) -> None:
    paid = payment(asked(gw, "fail"))
    calls = facilitator.settle_calls
    failed = call(gw, "fail", {"text": "x"}, pay=paid).json()
    assert failed["result"]["isError"] is True and "x402/payment-response" not in failed["result"].get("_meta", {})
    assert facilitator.settle_calls == calls


def test_a_failed_settlement_withholds_the_result(gw: InProcessGateway, facilitator: Facilitator) -> None:
    paid = payment(asked(gw), signature="0xsettle-fails")
    result = call(gw, "echo", {"text": "secret-output"}, pay=paid).json()["result"]
    assert result["isError"] is True and "secret-output" not in json.dumps(result)
    assert result["structuredContent"]["x402/payment-response"]["success"] is False
    wait_until(lambda: any(e["data"]["stage"] == "settlement" for e in gw.events("x402.failed")))


def test_a_payment_the_facilitator_refuses_is_refused_before_the_tool_runs(
    gw: InProcessGateway, facilitator: Facilitator
) -> None:
    calls = facilitator.settle_calls
    result = call(gw, "echo", {"text": "no"}, pay=payment(asked(gw), signature="0xbad")).json()["result"]
    assert result["isError"] is True and result["_meta"]["paygate/deny"]["reason"] == "payment_invalid"
    assert facilitator.settle_calls == calls


def test_a_payment_for_less_than_the_price_is_refused(gw: InProcessGateway) -> None:
    cheap = {**asked(gw), "amount": "1"}
    result = call(gw, "echo", {"text": "no"}, pay=payment(cheap)).json()["result"]
    assert result["_meta"]["paygate/deny"]["reason"] == "payment_mismatch"


def test_an_unreadable_payment_is_refused(gw: InProcessGateway) -> None:
    result = call(gw, "echo", {"text": "no"}, pay={"x402Version": 2, "payload": "nope"}).json()["result"]
    assert result["_meta"]["paygate/deny"]["reason"] == "payment_unreadable"


def test_admin_view_and_runtime_switch(gw: InProcessGateway) -> None:
    view = gw.client.get("/admin/x402", headers=gw.admin()).json()
    assert view["configured"] and view["enabled"] and "facilitatorAuthHeader" not in view["config"]
    assert view["counts"]["sinceStart"]["settled"] >= 0
    off = gw.client.post("/admin/x402", json={"enabled": False}, headers=gw.admin())
    assert off.status_code == 200 and off.json()["enabled"] is False
    try:
        denied = call(gw, "echo", {"text": "hi"}).json()
        assert denied["error"]["data"]["reason"] == "missing_api_key"  # the usual refusal again
        bad = gw.client.post("/admin/x402", json={"network": "nope"}, headers=gw.admin())
        assert bad.status_code == 400
    finally:
        on = gw.client.post("/admin/x402", json={"enabled": True, "creditsPerDollar": 1000}, headers=gw.admin())
        assert on.status_code == 200
    assert asked(gw)["amount"] == "1000"
    gw.client.post("/admin/x402", json={"creditsPerDollar": 100}, headers=gw.admin())
    wait_until(lambda: len(gw.events("x402.updated")) >= 3)
