"""Key policy through the real CLI: a daily quota holds across a real restart of the process. The rest
of the gate's policy (IP allowlists, countries, globalQuota, groups, teams, tools/list per key) runs
in-process: tests/api/test_policy_enforcement.py."""

from __future__ import annotations

from pathlib import Path

from tests.support import ECHO_COMMAND, running_gateway, text_of


def test_a_daily_quota_holds_across_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=state) as gw:
        key = gw.create_key(100, quota={"dailyCallLimit": 2})
        for _ in range(2):
            assert text_of(gw.call_tool("echo", {"text": "hi"}, key)) == "hi"
        third = gw.call_tool("echo", {"text": "hi"}, key)["error"]["data"]
        assert (third["reason"], third["httpStatus"]) == ("quota_exceeded", 429)
        assert gw.balance(key) == 98
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=state) as again:
        assert again.call_tool("echo", {"text": "hi"}, key)["error"]["data"]["reason"] == "quota_exceeded"
        assert again.balance(key) == 98
