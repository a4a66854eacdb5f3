"""Key policy through the real CLI: a daily quota holds across a real restart of the process. The rest
of the gate's policy (IP allowlists, countries, globalQuota, groups, teams, tools/list per key) runs
in-process: tests/api/test_policy_enforcement.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support import ECHO_COMMAND, Gateway, running_gateway, text_of


def reason(reply: dict[str, Any]) -> str | None:
    return reply["error"]["data"]["reason"] if "error" in reply else None


def call(gw: Gateway, key: str, tool: str = "echo", headers: dict[str, str] | None = None) -> dict[str, Any]:
    args = {"text": "hi"} if tool == "echo" else {"a": 1, "b": 2}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}}
    return dict(gw.client.post("/mcp", json=body, headers={"X-API-Key": key, **(headers or {})}).json())


def tool_names(gw: Gateway, key: str | None) -> list[str]:
    reply = gw.rpc("tools/list", {}, key=key).json()
    return [t["name"] for t in reply["result"]["tools"]]


def test_a_daily_quota_holds_across_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=state) as gw:
        key = gw.create_key(100, quota={"dailyCallLimit": 2})
        assert text_of(call(gw, key)) == "hi" and text_of(call(gw, key)) == "hi"
        third = call(gw, key)
        assert reason(third) == "quota_exceeded" and third["error"]["data"]["httpStatus"] == 429
        assert gw.balance(key) == 98
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=state) as again:
        assert reason(call(again, key)) == "quota_exceeded"
        assert again.balance(key) == 98
