"""Cost tags through the real CLI (docs/money-rules.md#cost-tags): tagged calls are attributed, a key's
required tags refuse an untagged call before any charge, and what the last seconds attributed is written
at shutdown, so the report after a restart has every call."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import ECHO_COMMAND, running_gateway, write_config


def test_attribution_survives_a_restart_and_required_tags_refuse(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"globalRateLimitPerMin": 0})
    state = str(tmp_path / "state.db")
    admin = "cost-tags-e2e-admin-key-0123456789"
    args = ("--server", ECHO_COMMAND, "--config", config)
    call = {"name": "echo", "arguments": {"text": "hi"}}
    with running_gateway(*args, state_file=state, admin_key=admin) as gw:
        key = gw.create_key(10)
        body = {"enabled": True, "key": key, "requiredTags": ["team"]}
        assert gw.client.post("/admin/cost-tags", json=body, headers=gw.admin()).status_code == 200
        error = gw.rpc("tools/call", call, key=key).json()["error"]
        assert error["code"] == -32602 and error["data"]["reason"] == "cost_tags_required"
        for team in ("red", "red", "blue"):
            tags = {"X-Cost-Tags": json.dumps({"team": team})}
            assert "result" in gw.rpc("tools/call", call, key=key, headers=tags).json()
        assert gw.balance(key) == 7
    with running_gateway(*args, state_file=state, admin_key=admin) as again:
        resp = again.client.get(
            "/admin/cost-tags/report", params={"groupBy": "team", "format": "csv"}, headers=again.admin()
        )
        assert resp.status_code == 200
        assert resp.text.splitlines() == ["team,calls,credits", "red,2,2", "blue,1,1"]
        assert again.rpc("tools/call", call, key=key).json()["error"]["data"]["reason"] == "cost_tags_required"
