"""Spend caps through the real CLI (docs/money-rules.md#spend-caps): a `spendCaps` config file's cap
refuses the call after N, before any charge, and `validate` no longer calls it "not enforced"."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import CLI, ECHO_COMMAND, running_gateway, write_config


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
