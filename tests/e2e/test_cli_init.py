"""The README's promise for `init`: answer its questions, start the gateway on the file it wrote, and a
paid call works against a real MCP server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support import CLI, ECHO_COMMAND, running_gateway


def test_a_gateway_starts_on_what_init_wrote_and_charges_its_prices(tmp_path: Path) -> None:
    out = tmp_path / "paygate.json"
    state = tmp_path / "state.db"
    argv = [CLI, "init", "--yes", "--output", str(out), "--server", ECHO_COMMAND, "--tool-price", "echo:4"]
    done = subprocess.run(
        [*argv, "--admin-key", "config", "--state-file", str(state)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr + done.stdout
    admin_key = json.loads(out.read_text())["adminKey"]
    with running_gateway("--config", str(out), state_file=None, admin_key=None) as gw:
        headers = {"X-Admin-Key": admin_key}
        created = gw.client.post("/keys", json={"name": "init", "credits": 10}, headers=headers)
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        reply = gw.call_tool("echo", {"text": "hi"}, key)
        assert "error" not in reply, reply
        assert gw.balance(key) == 6  # the price init wrote for echo
    assert state.exists()  # the store init chose, not the default one
