"""The /mcp endpoint: JSON-RPC errors, sessions, SSE, free and gated methods."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_SERVER, PYTHON, write_config


def post_raw(gw: InProcessGateway, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return gw.client.post("/mcp", content=body, headers={"content-type": "application/json", **(headers or {})})


def test_malformed_json_is_a_parse_error(gw: InProcessGateway) -> None:
    resp = post_raw(gw, b'{"jsonrpc": "2.0", "id": 1,')
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == -32700


def test_structurally_invalid_requests_are_invalid_request(gw: InProcessGateway) -> None:
    for body in (
        {"id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1, "method": 5},
        {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": "x"},
        {"jsonrpc": "2.0"},
    ):
        resp = post_raw(gw, json.dumps(body).encode())
        assert resp.json()["error"]["code"] == -32600, body


def test_unknown_methods_are_method_not_found(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    assert gw.rpc("no/such/method", {}, key=raw).json()["error"]["code"] == -32601
    assert gw.balance(raw) == 1  # not a tool call: nothing charged


def test_free_methods_need_no_key(gw: InProcessGateway) -> None:
    for method in ("ping", "tools/list", "initialize"):
        params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        resp = gw.rpc(method, params if method == "initialize" else {})
        assert "result" in resp.json(), method


def test_gated_but_free_of_charge_methods_need_a_valid_key(gw: InProcessGateway) -> None:
    denied = gw.rpc("prompts/get", {"name": "x"}).json()
    assert denied["error"]["code"] == -32402 and denied["error"]["data"]["reason"] == "missing_api_key"
    bad = gw.rpc("prompts/get", {"name": "x"}, key="pg_not_a_real_key").json()
    assert bad["error"]["data"]["reason"] == "invalid_api_key"


def test_tools_call_without_a_key_is_denied_with_pricing(gw: InProcessGateway) -> None:
    err = gw.call_tool("add", {"a": 1, "b": 2}, None)["error"]
    assert err["code"] == -32402
    assert err["data"]["reason"] == "missing_api_key"
    assert err["data"]["pricing"]["creditsPerCall"] == 1


def test_unknown_tools_are_rejected_without_charge(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    error = gw.call_tool("nope", {}, raw)["error"]
    assert (error["code"], error["data"]["reason"]) == (-32602, "unknown_tool")  # docs/errors.md's reason
    assert gw.balance(raw) == 3


def test_initialize_issues_a_session_that_is_honoured_then_deleted(gw: InProcessGateway) -> None:
    init = gw.rpc(
        "initialize", {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    )
    session = init.headers["mcp-session-id"]
    assert init.json()["result"]["protocolVersion"] == "2025-03-26"
    assert init.json()["result"]["serverInfo"]["name"] == "paygate-test-echo"
    ok = gw.rpc("ping", headers={"Mcp-Session-Id": session})
    assert ok.status_code == 200 and ok.headers["mcp-session-id"] == session
    assert gw.client.delete("/mcp", headers={"Mcp-Session-Id": session}).status_code == 200
    assert gw.rpc("ping", headers={"Mcp-Session-Id": session}).status_code == 404
    assert gw.client.delete("/mcp", headers={"Mcp-Session-Id": session}).status_code == 404


def test_unknown_session_ids_get_404(gw: InProcessGateway) -> None:
    assert gw.rpc("ping", headers={"Mcp-Session-Id": "mcp_sess_forged"}).status_code == 404


def test_notifications_are_accepted_with_202(gw: InProcessGateway) -> None:
    resp = post_raw(gw, b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
    assert resp.status_code == 202 and resp.content == b""


def test_sse_response_when_the_client_only_accepts_event_streams(gw: InProcessGateway) -> None:
    raw = gw.create_key(2)
    resp = post_raw(
        gw,
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 9,
                "method": "tools/call",
                "params": {"name": "add", "arguments": {"a": 2, "b": 2}},
            }
        ).encode(),
        {"Accept": "text/event-stream", "X-API-Key": raw},
    )
    assert resp.headers["content-type"].startswith("text/event-stream")
    data = [line[5:].strip() for line in resp.text.splitlines() if line.startswith("data:")]
    assert json.loads(data[0])["result"]["structuredContent"] == {"result": 4}
    assert resp.headers["x-credits-remaining"] == "1"


def test_get_opens_an_event_stream_for_a_session(gw: InProcessGateway) -> None:
    session = gw.rpc(
        "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    ).headers["mcp-session-id"]
    with gw.client.stream("GET", "/mcp", headers={"Accept": "text/event-stream", "Mcp-Session-Id": session}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        first = next(r.iter_lines())
        assert first.startswith(":")
    assert gw.client.get("/mcp", headers={"Accept": "text/event-stream"}).status_code == 400
    assert gw.client.get("/mcp", headers={"Accept": "text/event-stream", "Mcp-Session-Id": "x"}).status_code == 404


def test_batches_answer_each_request(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    call = {"jsonrpc": "2.0", "method": "tools/call"}
    batch: list[dict[str, object]] = [
        {**call, "id": i, "params": {"name": "add", "arguments": {"a": i, "b": 1}}} for i in range(3)
    ]
    batch.append({"jsonrpc": "2.0", "method": "notifications/initialized"})
    resp = post_raw(gw, json.dumps(batch).encode(), {"X-API-Key": raw})
    answers = {a["id"]: a["result"]["structuredContent"]["result"] for a in resp.json()}
    assert answers == {0: 1, 1: 2, 2: 3}
    assert gw.balance(raw) == 2


def test_rate_and_credit_headers_on_mcp_responses(gw: InProcessGateway) -> None:
    raw = gw.create_key(4)
    resp = gw.rpc("tools/list", {}, key=raw)
    assert resp.headers["x-credits-remaining"] == "4"
    call = gw.rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}, key=raw)
    assert call.headers["x-credits-remaining"] == "3"


def test_oversized_mcp_body_is_413(gw: InProcessGateway) -> None:
    raw = gw.create_key(4)
    resp = post_raw(
        gw,
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "x" * 1_100_000}},
            }
        ).encode(),
        {"X-API-Key": raw},
    )
    assert resp.status_code == 413
    assert gw.balance(raw) == 4


def test_wrong_http_method_is_405(gw: InProcessGateway) -> None:
    assert gw.client.put("/mcp", content=b"{}").status_code == 405


def test_arguments_nested_too_deeply_to_price_are_invalid_params_and_cost_nothing(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "serverCommand": PYTHON,
            "serverArgs": [ECHO_SERVER],
            "globalRateLimitPerMin": 0,
            "toolPricing": {"echo": {"creditsPerCall": 1, "creditsPerKbInput": 1}},
        },
    )
    with running_inprocess_gateway("--config", config) as gw:
        key = gw.create_key(10)
        deep: dict[str, Any] = {"text": "x"}
        for _ in range(300):
            deep = {"d": deep}
        reply = gw.call_tool("echo", deep, key)
        assert reply["error"]["code"] == -32602 and "nested" in reply["error"]["message"]
        assert gw.balance(key) == 10
