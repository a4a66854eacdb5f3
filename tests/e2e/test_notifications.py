"""Backend notifications reach clients' GET streams; list_changed refreshes the cached tool list."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tests.support import Gateway, wait_until

pytestmark = pytest.mark.e2e


def open_session(gw: Gateway) -> str:
    resp = gw.rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                 "clientInfo": {"name": "t", "version": "1"}})
    return str(resp.headers["mcp-session-id"])


def collect_stream(gw: Gateway, session: str, received: list[dict[str, Any]], opened: threading.Event,
                   stop: threading.Event) -> None:
    headers = {"Accept": "text/event-stream", "Mcp-Session-Id": session}
    with gw.client.stream("GET", "/mcp", headers=headers, timeout=30) as resp:
        for line in resp.iter_lines():
            opened.set()
            if line.startswith("data:"):
                received.append(json.loads(line[5:]))
            if stop.is_set():
                return


def test_a_backend_log_notification_reaches_an_open_stream(echo_gateway: Gateway) -> None:
    session = open_session(echo_gateway)
    received: list[dict[str, Any]] = []
    opened, stop = threading.Event(), threading.Event()
    reader = threading.Thread(target=collect_stream, args=(echo_gateway, session, received, opened, stop),
                              daemon=True)
    reader.start()
    assert opened.wait(10)
    key = echo_gateway.create_key(5)
    reply = echo_gateway.call_tool("announce", {"text": "hello from the backend"}, key)
    assert reply["result"]["content"][0]["text"] == "announced"
    wait_until(lambda: any(m.get("method") == "notifications/message" for m in received), 10, "log notification")
    message = next(m for m in received if m.get("method") == "notifications/message")
    assert message["params"]["data"] == "hello from the backend"
    stop.set()
    echo_gateway.client.delete("/mcp", headers={"Mcp-Session-Id": session})  # ends the stream
    reader.join(10)
    assert not reader.is_alive()


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
        resp = echo_gateway.client.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/cancelled",
                                                      "params": {"requestId": upstream_id}})
        assert resp.status_code == 202
    worker.join(30)
    assert result["result"]["content"][0]["text"] == "slept 1.0"
