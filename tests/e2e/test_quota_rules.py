"""Quota rules through the real CLI (docs/money-rules.md#quota-rules): a rule created at runtime refuses the
call past its hard cap before any charge, warns within the burst, and still holds after a restart (the rule
kept in the store, its count recounted from the usage log)."""

from __future__ import annotations

from pathlib import Path

from tests.support import ECHO_COMMAND, running_gateway, write_config


def test_a_rule_refuses_past_its_hard_cap_and_survives_a_restart(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"globalRateLimitPerMin": 0})
    state = str(tmp_path / "state.db")
    admin = "quota-rules-e2e-admin-key-0123456789"
    args = ("--server", ECHO_COMMAND, "--config", config)
    call = {"name": "echo", "arguments": {"text": "hi"}}
    with running_gateway(*args, state_file=state, admin_key=admin) as gw:
        key = gw.create_key(10)
        body = {"key": key, "tool": "echo", "limit": 2, "burstPercent": 50, "period": "weekly"}
        resp = gw.client.post("/admin/quota-rules", json=body, headers=gw.admin())
        assert resp.status_code == 201, resp.text
        rule = resp.json()["rule"]
        assert rule["hardCap"] == 3
        replies = [gw.rpc("tools/call", call, key=key) for _ in range(3)]
        assert all("result" in r.json() for r in replies)
        assert "x-quota-warning" not in replies[1].headers
        assert replies[2].headers["x-quota-warning"].startswith(rule["id"])  # within the burst
        error = gw.rpc("tools/call", call, key=key).json()["error"]
        assert error["code"] == -32402 and error["data"]["reason"] == "quota_rule_exceeded"
        assert gw.balance(key) == 7
    with running_gateway(*args, state_file=state, admin_key=admin) as again:
        view = again.client.get("/admin/quota-rules", headers=again.admin()).json()
        assert [r["id"] for r in view["rules"]] == [rule["id"]]
        assert view["rules"][0]["usage"][0]["calls"] == 3
        assert again.rpc("tools/call", call, key=key).json()["error"]["data"]["reason"] == "quota_rule_exceeded"
        assert again.balance(key) == 7
