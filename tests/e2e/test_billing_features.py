"""Pricing and limits through the real CLI: rate limits, size-based prices, refunds, shadow mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import ECHO_COMMAND, start_gateway

pytestmark = pytest.mark.e2e


def config(tmp_path: Path, **data: object) -> str:
    path = tmp_path / "paygate.json"
    path.write_text(
        json.dumps({"serverCommand": ECHO_COMMAND.split()[0], "serverArgs": ECHO_COMMAND.split()[1:], **data})
    )
    return str(path)


def test_global_rate_limit_denies_the_call_over_the_limit(tmp_path: Path) -> None:
    gw = start_gateway("--server", ECHO_COMMAND, "--rate-limit", "3")
    try:
        raw = gw.create_key(100)
        answers = [gw.rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}, key=raw) for _ in range(4)]
        assert [("result" in a.json()) for a in answers] == [True, True, True, False]
        assert answers[3].json()["error"]["data"]["reason"] == "rate_limited"
        assert answers[0].headers["x-ratelimit-limit"] == "3"
        assert [a.headers["x-ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
        assert gw.balance(raw) == 97  # the denied call cost nothing
    finally:
        gw.stop()


def test_per_tool_rate_limit_is_independent_of_other_tools(tmp_path: Path) -> None:
    path = config(tmp_path, globalRateLimitPerMin=0, toolPricing={"add": {"creditsPerCall": 2, "rateLimitPerMin": 1}})
    gw = start_gateway("--config", path)
    try:
        raw = gw.create_key(100)
        assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, raw)
        second = gw.call_tool("add", {"a": 1, "b": 1}, raw)
        assert second["error"]["data"]["reason"] == "tool_rate_limited"
        assert "result" in gw.call_tool("echo", {"text": "hi"}, raw)
        assert gw.balance(raw) == 100 - 2 - 1
        listed = {t["name"]: t["_pricing"] for t in gw.rpc("tools/list").json()["result"]["tools"]}
        assert listed["add"] == {"creditsPerCall": 2, "pricingModel": "flat", "rateLimitPerMin": 1}
    finally:
        gw.stop()


def test_input_and_output_size_pricing(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        globalRateLimitPerMin=0,
        toolPricing={
            "echo": {"creditsPerCall": 2, "creditsPerKbInput": 5},
            "big_output": {"creditsPerCall": 1, "creditsPerKbOutput": 2},
        },
    )
    gw = start_gateway("--config", path)
    try:
        raw = gw.create_key(1000)
        text = "x" * (3 * 1024 - len('{"text":""}'))  # arguments serialise to exactly 3 KB
        gw.call_tool("echo", {"text": text}, raw)
        assert gw.balance(raw) == 1000 - 17
        resp = gw.rpc("tools/call", {"name": "big_output", "arguments": {"kilobytes": 4}}, key=raw)
        surcharge = int(resp.headers["x-output-surcharge"])
        assert surcharge >= 8  # ≥ 4 KB of output at 2 credits/KB
        assert gw.balance(raw) == 1000 - 17 - 1 - surcharge
    finally:
        gw.stop()


def test_refund_on_failure_returns_credits_for_failed_calls() -> None:
    gw = start_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--price", "3", "--refund-on-failure")
    try:
        raw = gw.create_key(10)
        failed = gw.call_tool("fail", {"reason": "boom"}, raw)
        assert failed["result"]["isError"] is True
        assert gw.balance(raw) == 10
        gw.call_tool("add", {"a": 1, "b": 1}, raw)
        assert gw.balance(raw) == 7
    finally:
        gw.stop()


def test_without_refund_on_failure_failed_calls_are_charged() -> None:
    gw = start_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--price", "3")
    try:
        raw = gw.create_key(10)
        gw.call_tool("fail", {}, raw)
        assert gw.balance(raw) == 7
    finally:
        gw.stop()


def test_shadow_mode_lets_everything_through_and_charges_nothing() -> None:
    gw = start_gateway("--server", ECHO_COMMAND, "--shadow")
    try:
        anonymous = gw.call_tool("add", {"a": 2, "b": 2}, None)
        assert anonymous["result"]["structuredContent"] == {"result": 4}
        assert anonymous["result"]["_meta"]["paygate"]["shadow"] == "shadow:missing_api_key"
        raw = gw.create_key(0)
        broke = gw.call_tool("add", {"a": 1, "b": 1}, raw)
        assert broke["result"]["_meta"]["paygate"]["shadow"] == "shadow:insufficient_credits"
        rich = gw.create_key(5)
        gw.call_tool("add", {"a": 1, "b": 1}, rich)
        assert gw.balance(rich) == 5
    finally:
        gw.stop()


def test_tool_price_flag_and_import_key() -> None:
    gw = start_gateway(
        "--server",
        ECHO_COMMAND,
        "--rate-limit",
        "0",
        "--tool-price",
        "add:4,echo:2",
        "--import-key",
        "pg_imported_key_0001:20",
    )
    try:
        gw.call_tool("add", {"a": 1, "b": 1}, "pg_imported_key_0001")
        gw.call_tool("echo", {"text": "x"}, "pg_imported_key_0001")
        assert gw.balance("pg_imported_key_0001") == 14
    finally:
        gw.stop()


def test_env_vars_configure_the_gateway() -> None:
    gw = start_gateway(
        env={
            "PAYGATE_SERVER": ECHO_COMMAND,
            "PAYGATE_PRICE": "5",
            "PAYGATE_RATE_LIMIT": "0",
            "PAYGATE_ADMIN_KEY": "admin_from_env_0123456789",
        }
    )
    gw.admin_key_override = "admin_from_env_0123456789"
    try:
        assert gw.ready["adminKey"] is None  # a configured admin key is never echoed
        raw = gw.create_key(10)
        gw.call_tool("add", {"a": 1, "b": 1}, raw)
        assert gw.balance(raw) == 5
    finally:
        gw.stop()


def test_refund_on_failure_covers_json_rpc_errors_such_as_a_timeout(tmp_path: Path) -> None:
    path = config(
        tmp_path, globalRateLimitPerMin=0, toolTimeoutSeconds=0.3, refundOnFailure=True, defaultCreditsPerCall=4
    )
    gw = start_gateway("--config", path)
    try:
        raw = gw.create_key(10)
        timed_out = gw.call_tool("slow", {"seconds": 5}, raw)
        assert timed_out["error"]["code"] == -32004
        assert gw.balance(raw) == 10
        assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, raw)  # the backend is still fine
        assert gw.balance(raw) == 6
    finally:
        gw.stop()


def test_free_methods_are_configurable(tmp_path: Path) -> None:
    gw = start_gateway("--config", config(tmp_path, freeMethods=["ping"]))
    init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    try:
        denied = gw.rpc("tools/list").json()
        assert denied["error"]["data"]["reason"] == "missing_api_key"
        anonymous_init = gw.rpc("initialize", init)
        assert anonymous_init.json()["error"]["data"]["reason"] == "missing_api_key"
        assert "mcp-session-id" not in anonymous_init.headers  # a refused initialize opens no session
        raw = gw.create_key(3)
        assert "mcp-session-id" in gw.rpc("initialize", init, key=raw).headers
        assert "tools" in gw.rpc("tools/list", key=raw).json()["result"]
        assert gw.balance(raw) == 3  # listing needs a key here, but costs nothing
        assert "result" in gw.rpc("ping").json()
    finally:
        gw.stop()
