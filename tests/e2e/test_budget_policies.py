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


def test_adaptive_rates_tighten_a_failing_keys_limit(tmp_path: Path) -> None:
    """Through the real CLI: after four failed calls the key's limit is halved (the headers say so) and the
    call past it is refused `rate_limited`, uncharged."""
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "8") as gw:
        body = {"enabled": True, "minCalls": 4, "errorRateThreshold": 0.5, "tightenFactor": 0.5}
        assert gw.client.post("/admin/adaptive-rates", json=body, headers=gw.admin()).status_code == 200
        key = gw.create_key(10)
        for _ in range(3):
            assert gw.call_tool("fail", {}, key)["result"]["isError"] is True
        resp = gw.rpc("tools/call", {"name": "fail", "arguments": {}}, key=key)
        assert resp.headers["x-ratelimit-limit"] == "8"  # judged after this call's answer
        balance = gw.balance(key)
        refused = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}, key=key)
        assert refused.json()["error"]["data"]["reason"] == "rate_limited"
        assert refused.headers["x-ratelimit-limit"] == "4"
        assert gw.balance(key) == balance
        view = gw.client.get("/admin/adaptive-rates", headers=gw.admin()).json()
        assert [a["direction"] for a in view["adjusted"]] == ["tighten"]
