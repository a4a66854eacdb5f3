"""The gateway in front of our own server: discovery, a paid call, blocking at zero."""

from __future__ import annotations

from tests.support import Gateway


def test_tools_list_is_free_and_carries_pricing(echo_gateway: Gateway) -> None:
    resp = echo_gateway.rpc("tools/list")
    assert resp.status_code == 200
    tools = {t["name"]: t for t in resp.json()["result"]["tools"]}
    assert {"echo", "add", "fail"} <= set(tools)
    assert tools["add"]["_pricing"] == {"creditsPerCall": 1, "pricingModel": "flat", "rateLimitPerMin": None}


def test_a_paid_call_deducts_credits_and_zero_credits_blocks(echo_gateway: Gateway) -> None:
    key = echo_gateway.create_key(2)
    first = echo_gateway.call_tool("add", {"a": 2, "b": 3}, key)
    assert first["result"]["structuredContent"] == {"result": 5}
    echo_gateway.call_tool("add", {"a": 1, "b": 1}, key)
    assert echo_gateway.balance(key) == 0
    denied = echo_gateway.call_tool("add", {"a": 1, "b": 1}, key)
    assert denied["error"]["code"] == -32402
    assert denied["error"]["data"]["reason"] == "insufficient_credits"
    assert echo_gateway.balance(key) == 0
