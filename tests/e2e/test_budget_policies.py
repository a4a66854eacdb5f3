"""Budget policies through the real CLI (docs/money-rules.md#budget-policies): a policy created over HTTP
refuses the call that would pass its budget before any charge, and survives a restart of the process."""

from __future__ import annotations

from pathlib import Path

from tests.support import ECHO_COMMAND, running_gateway


def test_a_policy_refuses_after_its_budget_and_survives_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--state-file", state)
    with running_gateway(*args) as gw:
        key = gw.create_key(10)
        body = {"name": "cap", "target": f"key:{key}", "dailyBudget": 2, "action": "deny"}
        resp = gw.client.post("/admin/budget-policies", json=body, headers=gw.admin())
        assert resp.status_code == 201, resp.text
        for _ in range(2):
            assert "result" in gw.call_tool("echo", {"text": "hi"}, key)
        error = gw.call_tool("echo", {"text": "hi"}, key)["error"]
        assert error["code"] == -32402 and error["data"]["reason"] == "budget_exceeded"
        assert gw.balance(key) == 8
        admin = gw.admin_key
    with running_gateway(*args, admin_key=admin) as again:
        view = again.client.get("/admin/budget-policies", headers=again.admin()).json()
        assert view["count"] == 1 and view["policies"][0]["spentToday"] == 2
        assert again.call_tool("echo", {"text": "hi"}, key)["error"]["data"]["reason"] == "budget_exceeded"
        assert again.balance(key) == 8
