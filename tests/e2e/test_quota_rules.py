"""Quota rules through the real CLI (docs/money-rules.md#quota-rules): a rule created at runtime refuses the
call past its hard cap before any charge, warns within the burst, and still holds after a restart (the rule
kept in the store, its count recounted from the usage log)."""

from __future__ import annotations

from pathlib import Path

from tests.redis_server import running_redis
from tests.support import ECHO_COMMAND, running_gateway, start_gateway, wait_until, write_config


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


def test_on_a_redis_fleet_each_instance_stops_at_the_hard_cap_and_rules_are_shared(tmp_path: Path) -> None:
    """The documented fleet bound: a rule created on one instance is applied by its peer within seconds, and
    each instance admits at most the hard cap of the calls it sees (the fleet at most n x hardCap)."""
    admin = "quota-rules-redis-admin-key-0123456789"
    config = write_config(tmp_path, {"globalRateLimitPerMin": 0})
    call = {"name": "echo", "arguments": {"text": "x"}}
    with running_redis(appendonly=True, appendfsync="always") as server:
        args = ("--server", ECHO_COMMAND, "--redis-url", server.url, "--config", config)
        one = start_gateway(*args, admin_key=admin, state_file=None)
        two = start_gateway(*args, admin_key=admin, state_file=None)
        try:
            key = one.create_key(20)
            wait_until(lambda: two.balance(key) == 20, what="the key on the second instance")
            resp = one.client.post("/admin/quota-rules", json={"key": key, "limit": 2}, headers=one.admin())
            assert resp.status_code == 201, resp.text
            wait_until(
                lambda: two.client.get("/admin/quota-rules", headers=two.admin()).json()["count"] == 1,
                timeout=20,
                what="the second instance to follow the new rule",
            )
            results = [gw.rpc("tools/call", call, key=key).json() for gw in (one, one, one, two, two, two)]
            admitted = [r for r in results if "result" in r]
            assert len(admitted) == 4  # each counted only its own calls: n * hardCap in all
            assert results[2]["error"]["data"]["reason"] == "quota_rule_exceeded"
            assert results[5]["error"]["data"]["reason"] == "quota_rule_exceeded"
            assert two.client.get("/admin/quota-rules", headers=two.admin()).json()["scope"] == "instance"
            wait_until(lambda: one.balance(key) == 16, what="the charges on Redis")
        finally:
            one.stop()
            two.stop()
