"""Switching from paygate-mcp, end to end: the real `paygate-mcp import-state` on the reference's own
state files, then `paygate-mcp wrap` on the result, and a real MCP client paying with a migrated key."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support import CLI, ECHO_COMMAND, running_gateway

pytestmark = pytest.mark.e2e
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference_state"
KEYS = json.loads((FIXTURES / "keys.json").read_text())


def import_state(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "import-state", *args], capture_output=True, text=True, timeout=60)


async def test_import_then_wrap_a_migrated_key_pays_for_a_call(tmp_path: Path) -> None:
    for f in FIXTURES.glob("state*.json"):
        shutil.copy(f, tmp_path / f.name)
    db = str(tmp_path / "ours.db")
    done = import_state(str(tmp_path / "state.json"), "--state-file", db)
    assert done.returncode == 0, done.stderr
    assert "imported 11, unchanged 0, conflicts 0, errors 0" in done.stdout
    assert KEYS["alice"] not in done.stdout  # keys are shown masked

    with running_gateway("--server", ECHO_COMMAND, state_file=db, admin_key="e2e-admin-key-0123456789") as gw:
        # the gateway holds the state file: a second import is refused, nothing changes
        busy = import_state(str(tmp_path / "state.json"), "--state-file", db)
        assert busy.returncode == 1 and "in use" in busy.stderr
        before = gw.balance(KEYS["alice"])
        async with (
            httpx2.AsyncClient(headers={"X-API-Key": KEYS["alice"]}, timeout=30.0) as http,
            Client(streamable_http_client(f"{gw.url}/mcp", http_client=http)) as client,
        ):  # type: ignore[arg-type]
            result = await client.call_tool("add", {"a": 2, "b": 3})
            assert not result.is_error and result.structured_content == {"result": 5}
        assert gw.balance(KEYS["alice"]) == before - 1 == 121

    again = import_state(str(tmp_path / "state.json"), "--state-file", db, "--json")
    assert again.returncode == 3  # alice spent here since: a conflict, reported and left alone
    items = {i["name"]: i for i in json.loads(again.stdout)["items"] if i["kind"] == "key"}
    assert items["alice"]["status"] == "conflict" and items["bob"]["status"] == "unchanged"
