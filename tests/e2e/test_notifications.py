"""Backend notifications reach the client they are for; list_changed refreshes the cached tool list."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tests.support import Gateway, wait_until

pytestmark = pytest.mark.e2e


def open_session(gw: Gateway, key: str | None = None) -> str:
    resp = gw.rpc(
        "initialize",
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        key=key,
    )
    return str(resp.headers["mcp-session-id"])


def collect_stream(
    gw: Gateway, headers: dict[str, str], received: list[dict[str, Any]], opened: threading.Event, stop: threading.Event
) -> None:
    with gw.client.stream("GET", "/mcp", headers=headers, timeout=30) as resp:
        for line in resp.iter_lines():
            opened.set()
            if line.startswith("data:"):
                received.append(json.loads(line[5:]))
            if stop.is_set():
                return


class Stream:
    """A session's GET stream, read on a thread."""

    def __init__(self, gw: Gateway, session: str, key: str) -> None:
        self.received: list[dict[str, Any]] = []
        self.opened, self.stop = threading.Event(), threading.Event()
        headers = {"Accept": "text/event-stream", "Mcp-Session-Id": session, "X-API-Key": key}
        self.reader = threading.Thread(
            target=collect_stream, args=(gw, headers, self.received, self.opened, self.stop), daemon=True
        )
        self.reader.start()
        assert self.opened.wait(10)

    def methods(self) -> list[str]:
        return [m.get("method", "") for m in self.received]


def test_a_backend_log_notification_reaches_the_calling_sessions_stream_only(echo_gateway: Gateway) -> None:
    # As an SDK client does: the key on every request (a session is bound to it; mcp/sessions.py).
    key = echo_gateway.create_key(5)
    caller, other = open_session(echo_gateway, key), open_session(echo_gateway, key)
    caller_stream, other_stream = Stream(echo_gateway, caller, key), Stream(echo_gateway, other, key)
    reply = echo_gateway.rpc(
        "tools/call",
        {"name": "announce", "arguments": {"text": "hello from the backend"}},
        key=key,
        headers={"Mcp-Session-Id": caller, "Accept": "application/json"},
    ).json()
    assert reply["result"]["content"][0]["text"] == "announced"
    wait_until(lambda: "notifications/message" in caller_stream.methods(), 10, "log notification")
    message = next(m for m in caller_stream.received if m.get("method") == "notifications/message")
    assert message["params"]["data"] == "hello from the backend"
    # A list change reaches every stream, after anything sent before it: the other session's
    # stream then shows it never had the caller's log line.
    echo_gateway.call_tool("grow", {"name": "tool_for_everyone"}, key)
    for stream in (caller_stream, other_stream):
        wait_until(lambda s=stream: "notifications/tools/list_changed" in s.methods(), 10, "list_changed")
    assert "notifications/message" not in other_stream.methods()
    for session, stream in ((caller, caller_stream), (other, other_stream)):
        stream.stop.set()
        # Ends the stream; with the key the session is bound to.
        echo_gateway.client.delete("/mcp", headers={"Mcp-Session-Id": session, "X-API-Key": key})
        stream.reader.join(10)
        assert not stream.reader.is_alive()


def test_list_changed_refreshes_tools_list_pricing_and_billing(echo_gateway: Gateway) -> None:
    key = echo_gateway.create_key(5)
    assert echo_gateway.call_tool("late_tool", {}, key)["error"]["code"] == -32602  # unknown: not charged
    assert echo_gateway.balance(key) == 5
    echo_gateway.call_tool("grow", {"name": "late_tool"}, key)

    def listed() -> bool:
        names = {t["name"] for t in echo_gateway.rpc("tools/list").json()["result"]["tools"]}
        return "late_tool" in names

    wait_until(listed, 10, "late_tool in tools/list")
    assert "late_tool" in {t["name"] for t in echo_gateway.client.get("/pricing").json()["tools"]}
    reply = echo_gateway.call_tool("late_tool", {}, key)
    assert reply["result"]["content"][0]["text"] == "late_tool works"
    assert echo_gateway.balance(key) == 3


def test_a_clients_cancel_cannot_cancel_another_clients_call(echo_gateway: Gateway) -> None:
    key = echo_gateway.create_key(5)
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(echo_gateway.call_tool("slow", {"seconds": 1.0}, key)))
    worker.start()
    wait_until(lambda: echo_gateway.client.get("/health").json()["inflight"] > 0, 10, "the slow call in flight")
    for upstream_id in range(1, 50):  # every id the gateway can have used upstream so far
        resp = echo_gateway.client.post(
            "/mcp", json={"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": upstream_id}}
        )
        assert resp.status_code == 202
    worker.join(30)
    assert result["result"]["content"][0]["text"] == "slept 1.0"


def test_a_tool_the_server_added_without_saying_so_is_found_when_called(echo_gateway: Gateway) -> None:
    key = echo_gateway.create_key(5)
    assert (
        echo_gateway.call_tool("grow_quietly", {"name": "quiet_tool"}, key)["result"]["content"][0]["text"]
        == "added quiet_tool quietly"
    )
    listed = {t["name"] for t in echo_gateway.rpc("tools/list").json()["result"]["tools"]}
    assert "quiet_tool" not in listed  # nobody was told
    reply = echo_gateway.call_tool("quiet_tool", {}, key)  # unknown to the gateway: it looks again
    assert reply["result"]["content"][0]["text"] == "quiet_tool works"
    assert echo_gateway.balance(key) == 3  # charged like any tool
    assert "quiet_tool" in {t["name"] for t in echo_gateway.rpc("tools/list").json()["result"]["tools"]}
    refused = echo_gateway.call_tool("no_such_tool", {}, key)
    assert refused["error"]["code"] == -32602 and echo_gateway.balance(key) == 3
