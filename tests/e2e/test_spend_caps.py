"""Spend caps through the real CLI (docs/money-rules.md#spend-caps): a `spendCaps` config file's cap
refuses the call after N, before any charge, and `validate` no longer calls it "not enforced"."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.redis_server import running_redis
from tests.support import CLI, ECHO_COMMAND, running_gateway, start_gateway, wait_until, write_config


def test_a_config_files_spend_cap_refuses_after_n_calls(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, {"spendCaps": {"serverDailyCallCap": 3, "breachAction": "deny"}, "globalRateLimitPerMin": 0}
    )
    with running_gateway("--server", ECHO_COMMAND, "--config", config) as gw:
        assert not [line for line in gw.stderr().splitlines() if line.startswith("warning: ")], gw.stderr()
        a, b = gw.create_key(10), gw.create_key(10)
        for key in (a, b, a):
            assert "result" in gw.call_tool("echo", {"text": "hi"}, key)
        for key in (a, b):
            error = gw.call_tool("echo", {"text": "hi"}, key)["error"]
            assert error["code"] == -32402 and error["data"]["reason"] == "spend_cap_exceeded"
            assert "server_daily_call_cap" in error["message"]
        assert gw.balance(a) == 8 and gw.balance(b) == 9
        view = gw.client.get("/admin/spend-caps", headers=gw.admin()).json()
        assert view["serverStats"]["dailyCalls"] == 3 and view["denied"]["server_daily_call_cap"] == 2


def test_validate_accepts_spend_caps_and_refuses_a_bad_one(tmp_path: Path) -> None:
    good = write_config(tmp_path, {"serverCommand": "x", "spendCaps": {"serverDailyCreditCap": 100}})
    ok = subprocess.run([CLI, "validate", "--config", good], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "spendCaps" not in ok.stdout + ok.stderr
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = write_config(bad_dir, {"serverCommand": "x", "spendCaps": {"breachAction": "explode"}})
    refused = subprocess.run([CLI, "validate", "--config", bad], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "breachAction" in refused.stdout + refused.stderr


def test_on_a_redis_fleet_each_instance_stops_at_the_cap_and_the_settings_are_shared(tmp_path: Path) -> None:
    """The documented fleet behaviour: two instances on one Redis, a server-wide cap of 2 calls a day.
    Each instance admits at most 2 (so the fleet at most 2 * 2), counts of its peer's calls are seen only at
    start, and a cap changed on one instance is applied by the other within seconds."""
    admin = "spend-caps-redis-admin-key-0123456789"
    config = write_config(tmp_path, {"spendCaps": {"serverDailyCallCap": 2}, "globalRateLimitPerMin": 0})
    with running_redis(appendonly=True, appendfsync="always") as server:
        args = ("--server", ECHO_COMMAND, "--redis-url", server.url, "--config", config)
        one = start_gateway(*args, admin_key=admin, state_file=None)
        two = start_gateway(*args, admin_key=admin, state_file=None)
        try:
            key = one.create_key(20)
            wait_until(lambda: two.balance(key) == 20, what="the key on the second instance")
            results = [gw.call_tool("echo", {"text": "x"}, key) for gw in (one, one, one, two, two, two)]
            admitted = [r for r in results if "result" in r]
            assert len(admitted) == 4  # each counted only its own calls since it started: n * cap in all
            assert "error" in results[2] and "error" in results[5]  # each instance stops at its cap
            assert results[2]["error"]["data"]["reason"] == "spend_cap_exceeded"
            wait_until(lambda: one.balance(key) == 20 - len(admitted), what="the charges on Redis")
            view = two.client.get("/admin/spend-caps", headers=two.admin()).json()
            assert view["scope"] == "instance"
            resp = one.client.post("/admin/spend-caps", json={"serverDailyCallCap": 0}, headers=one.admin())
            assert resp.status_code == 200
            wait_until(
                lambda: "result" in two.call_tool("echo", {"text": "x"}, key),
                timeout=20,
                what="the second instance to follow the change",
            )
        finally:
            one.stop()
            two.stop()
