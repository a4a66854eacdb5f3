"""Config profiles through the real CLI (docs/profiles.md): `paygate-mcp wrap --config F` in front of the
echo MCP server; a profile activated changes the price of the next call, survives a restart on the same
state file (applied again over F before serving), and a rollback goes back to F's price."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import ECHO_SERVER, PYTHON, Gateway, running_gateway

PATH = "/admin/config-profiles"


def charged(gw: Gateway, key: str) -> int:
    before = gw.balance(key)
    assert "result" in gw.call_tool("echo", {"text": "x"}, key)
    return before - gw.balance(key)


def test_a_profile_activated_survives_a_restart_and_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "paygate.json"
    path.write_text(json.dumps({"serverCommand": PYTHON, "serverArgs": [ECHO_SERVER], "defaultCreditsPerCall": 2}))
    state, admin = str(tmp_path / "state.db"), "admin-key-for-profiles-e2e-0123456789"
    with running_gateway("--config", str(path), state_file=state, admin_key=admin) as gw:
        key = gw.create_key(1000)
        body = {"action": "save", "name": "peak", "settings": {"defaultCreditsPerCall": 6}}
        assert gw.client.post(PATH, json=body, headers=gw.admin()).status_code == 200
        resp = gw.client.post(PATH, json={"action": "activate", "name": "peak"}, headers=gw.admin())
        assert resp.status_code == 200 and resp.json()["changed"] == ["defaultCreditsPerCall"], resp.text
        assert charged(gw, key) == 6
        assert gw.stop() == 0
    with running_gateway("--config", str(path), state_file=state, admin_key=admin) as gw:
        assert charged(gw, key) == 6  # applied again before the first call
        assert "config profile 'peak' applied over the config file" in gw.stderr()
        resp = gw.client.post(PATH, json={"action": "rollback"}, headers=gw.admin())
        assert resp.status_code == 200 and resp.json()["active"] is None, resp.text
        assert charged(gw, key) == 2
        assert gw.client.get(PATH, headers=gw.admin()).json()["active"] is None
