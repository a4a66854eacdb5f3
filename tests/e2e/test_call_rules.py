"""Tool dependencies, an approval workflow and request tracing through the real CLI, in front of a real MCP
server: each set over the admin API of a real gateway process (docs/traffic.md, docs/tracing.md). The
edge cases run in-process: tests/api/test_traffic_tool_deps.py, test_traffic_approvals.py, test_tracing.py."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.support import ECHO_COMMAND, running_gateway, text_of


def test_a_dependency_an_approval_and_a_trace_on_a_real_gateway() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "add:4") as gw:
        admin = gw.admin()
        key = gw.create_key(20)
        rule = gw.client.post("/admin/tool-deps", json={"tool": "add", "dependsOn": ["echo"]}, headers=admin)
        assert rule.status_code == 200, rule.text
        assert gw.client.post("/admin/tracing", json={"enabled": True}, headers=admin).status_code == 200
        refused = gw.call_tool("add", {"a": 1, "b": 2}, key)
        assert refused["error"]["data"]["reason"] == "dependency_not_met" and gw.balance(key) == 20
        assert text_of(gw.call_tool("echo", {"text": "first"}, key)) == "first"

        body = {"name": "adds", "condition": "tool_match", "value": "add", "timeoutSeconds": 30}
        assert gw.client.post("/admin/approval-workflows", json=body, headers=admin).status_code == 200
        answer: dict[str, Any] = {}
        waiting = threading.Thread(target=lambda: answer.update(gw.call_tool("add", {"a": 1, "b": 2}, key)))
        waiting.start()
        deadline = time.monotonic() + 10
        pending: list[dict[str, Any]] = []
        while not pending and time.monotonic() < deadline:  # the call arrives on the other thread
            pending = gw.client.get("/admin/approval-workflows", headers=admin).json()["pending"]
            time.sleep(0.02)
        assert pending and gw.balance(key) == 19  # the echo only: the waiting call is not charged
        decision = {"action": "approve", "requestId": pending[0]["requestId"]}
        assert gw.client.post("/admin/approval-workflows", json=decision, headers=admin).status_code == 200
        waiting.join(10)
        assert answer["result"]["structuredContent"] == {"result": 3} and gw.balance(key) == 15

        traces = gw.client.get("/admin/tracing", headers=admin).json()["traces"]
        by_tool = {(t["tool"], t["outcome"]): t for t in traces}
        assert by_tool[("add", "ok")]["credits"] == 4
        assert by_tool[("add", "denied")]["denyReason"] == "dependency_not_met"
        assert by_tool[("echo", "ok")]["backendMs"] > 0
