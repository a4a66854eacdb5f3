"""The 2026-07-28 wire on /mcp, by hand (raw HTTP) through the real CLI: discovery, the envelope and
routing-header checks, `input_required` round trips billed once, and the batch rules of each era.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ECHO_COMMAND, Gateway, running_gateway, wait_until, write_config

pytestmark = pytest.mark.e2e
MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
}


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gateway:
        yield gateway


def modern(
    gw: Gateway,
    method: str,
    params: dict[str, Any] | None = None,
    key: str | None = None,
    msg_id: Any = 1,
    headers: dict[str, str] | None = None,
    meta: dict[str, Any] | None = None,
) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": method,
        "params": {**(params or {}), "_meta": ENVELOPE if meta is None else meta},
    }
    sent = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method, "Accept": "application/json, text/event-stream"}
    if method == "tools/call":
        sent["Mcp-Name"] = str((params or {}).get("name"))
    if key:
        sent["X-API-Key"] = key
    return gw.client.post("/mcp", json=body, headers={**sent, **(headers or {})})


def test_discover_names_every_version_and_the_backends_capabilities(gw: Gateway) -> None:
    resp = modern(gw, "server/discover")
    assert resp.status_code == 200 and "mcp-session-id" not in resp.headers
    result = resp.json()["result"]
    assert result["supportedVersions"] == ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", MODERN]
    assert "tools" in result["capabilities"] and result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "paygate-test-echo"
    listed = modern(gw, "tools/list").json()["result"]
    assert listed["resultType"] == "complete" and listed["cacheScope"] == "private"
    assert "_pricing" in listed["tools"][0]


@pytest.mark.parametrize(
    ("headers", "meta", "code"),
    [
        ({"Mcp-Method": "tools/list"}, None, -32020),  # the header names another method than the body
        ({"Mcp-Name": "add"}, None, -32020),  # ... another tool
        ({}, {"io.modelcontextprotocol/protocolVersion": MODERN}, -32602),  # no clientCapabilities
        ({}, {**ENVELOPE, "io.modelcontextprotocol/protocolVersion": "2025-11-25"}, -32020),  # header ≠ body
    ],
)
def test_an_envelope_or_routing_header_that_disagrees_is_a_400_and_nothing_runs(
    gw: Gateway, headers: dict[str, str], meta: dict[str, Any] | None, code: int
) -> None:
    key = gw.create_key(5)
    resp = modern(gw, "tools/call", {"name": "echo", "arguments": {"text": "x"}}, key, headers=headers, meta=meta)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == code
    assert gw.balance(key) == 5


def test_methods_the_revision_removed_are_not_found_and_batches_and_notifications_are_not_taken(gw: Gateway) -> None:
    # (`initialize` is not among them: whatever header it carries, it is a handshake and is served as one)
    for method in ("ping", "logging/setLevel", "resources/subscribe"):
        resp = modern(gw, method)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == -32601
    batch = gw.client.post(
        "/mcp",
        headers={"MCP-Protocol-Version": MODERN},
        json=[{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": ENVELOPE}}],
    )
    assert batch.status_code == 400 and "batches" in batch.json()["error"]["message"]
    note = gw.client.post(
        "/mcp",
        headers={"MCP-Protocol-Version": MODERN},
        json={"jsonrpc": "2.0", "method": "notifications/progress", "params": {"_meta": ENVELOPE}},
    )
    assert note.status_code == 202


def test_a_server_question_comes_back_as_input_required_and_the_retry_is_not_billed_again(gw: Gateway) -> None:
    key, stranger = gw.create_key(10), gw.create_key(10)
    call = {"name": "ask_llm", "arguments": {"prompt": "sunny?"}}
    first = modern(gw, "tools/call", call, key, msg_id="a1").json()
    assert first["id"] == "a1" and first["result"]["resultType"] == "input_required"
    [(question_id, question)] = first["result"]["inputRequests"].items()
    assert question["method"] == "sampling/createMessage"
    assert question["params"]["messages"][0]["content"]["text"] == "sunny?"
    state = first["result"]["requestState"]
    assert gw.balance(key) == 9  # charged once, when the call was admitted
    answer = {"role": "assistant", "model": "m1", "content": {"type": "text", "text": "yes"}}
    retry = {**call, "requestState": state, "inputResponses": {question_id: answer}}
    refused = modern(gw, "tools/call", retry, stranger, msg_id="a2")  # someone else's key
    assert refused.status_code == 400 and "requestState" in refused.json()["error"]["message"]
    other_tool = modern(gw, "tools/call", {**retry, "name": "echo"}, key, msg_id="a2")
    assert other_tool.status_code == 400  # a retry must be the same request
    done = modern(gw, "tools/call", retry, key, msg_id="a3").json()
    assert done["id"] == "a3" and done["result"]["content"][0]["text"] == "model m1 said: yes"
    assert done["result"]["resultType"] == "complete"
    assert gw.balance(key) == 9 and gw.balance(stranger) == 10
    again = modern(gw, "tools/call", retry, key, msg_id="a4")
    assert again.status_code == 400  # single use


def test_a_held_call_nobody_comes_back_for_ends_at_the_tool_timeout_refunded_by_policy(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"toolTimeoutSeconds": 1.5})
    with running_gateway(
        "--server", ECHO_COMMAND, "--refund-on-failure", "--config", config, "--tool-price", "slow_calls:0"
    ) as gw:
        key = gw.create_key(3)
        first = modern(gw, "tools/call", {"name": "ask_llm", "arguments": {"prompt": "?"}}, key).json()
        assert first["result"]["resultType"] == "input_required" and gw.balance(key) == 2
        wait_until(lambda: gw.balance(key) == 3, 15, "the held call to time out and be refunded")
        state = first["result"]["requestState"]
        late = modern(
            gw,
            "tools/call",
            {"name": "ask_llm", "arguments": {"prompt": "?"}, "requestState": state, "inputResponses": {}},
            key,
        )
        assert late.status_code == 400


def test_json_rpc_batches_follow_the_sessions_version() -> None:
    with running_gateway("--server", ECHO_COMMAND) as gw:
        batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2, "method": "ping"}]
        assert [m["id"] for m in gw.client.post("/mcp", json=batch).json()] == [1, 2]  # 2025-03-26 allows them
        init = gw.rpc(
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        )
        session = init.headers["mcp-session-id"]
        refused = gw.client.post("/mcp", json=batch, headers={"Mcp-Session-Id": session})
        assert refused.status_code == 400 and "2025-06-18" in refused.json()["error"]["message"]
        with_init = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}]
        assert gw.client.post("/mcp", json=with_init).status_code == 400


def test_a_modern_client_without_elicitation_is_not_asked_for_it(gw: Gateway) -> None:
    key = gw.create_key(5)
    refused = modern(gw, "tools/call", {"name": "ask_user", "arguments": {"question": "?"}}, key).json()
    assert refused["error"]["message"] == "The client does not support elicitation"
