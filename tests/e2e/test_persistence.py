"""State survives a clean restart and `kill -9`: keys, credits, usage, the admin key."""

from __future__ import annotations

import concurrent.futures
import signal
import sqlite3
import stat
from pathlib import Path

import pytest

from tests.support import ECHO_COMMAND, start_gateway

pytestmark = pytest.mark.e2e


def test_clean_restart_keeps_keys_credits_usage_and_admin_key(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    gw = start_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=state)
    try:
        admin = gw.admin_key
        raw = gw.create_key(10)
        for _ in range(3):
            gw.call_tool("add", {"a": 1, "b": 1}, raw)
    finally:
        assert gw.stop() == 0
    key_file = tmp_path / "admin.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_file.chmod(0o644)  # as an older install, or a careless copy, may have left it

    again = start_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=state)
    try:
        assert again.admin_key == admin
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # made private again on reading
        assert again.balance(raw) == 7
        usage = again.client.get("/usage", headers=again.admin()).json()
        assert usage["count"] == 3
    finally:
        again.stop()


def test_every_acknowledged_charge_survives_kill_9(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    gw = start_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=state)
    raw = gw.create_key(1000)
    acknowledged = 0
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda i: gw.call_tool("add", {"a": i, "b": 0}, raw, msg_id=i), range(40)))
        acknowledged = sum(1 for r in replies if "result" in r)
    finally:
        gw.stop(signal.SIGKILL)
    assert acknowledged == 40

    again = start_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=state)
    try:
        assert again.balance(raw) == 1000 - acknowledged
        assert again.client.get("/usage", headers=again.admin()).json()["count"] == acknowledged
    finally:
        again.stop()


def test_in_memory_state_is_gone_after_restart() -> None:
    gw = start_gateway("--server", ECHO_COMMAND, state_file=":memory:")
    try:
        raw = gw.create_key(5)
    finally:
        gw.stop()
    again = start_gateway("--server", ECHO_COMMAND, state_file=":memory:")
    try:
        assert again.client.get("/balance", headers={"X-API-Key": raw}).status_code == 401
    finally:
        again.stop()


def test_default_state_file_lives_under_home(tmp_path: Path) -> None:
    gw = start_gateway("--server", ECHO_COMMAND, state_file=None, env={"HOME": str(tmp_path)})
    try:
        gw.create_key(1)
    finally:
        gw.stop()
    assert (tmp_path / ".paygate" / "paygate.db").exists()
    assert (tmp_path / ".paygate" / "admin.key").exists()


def journal_units(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()[1:]  # its first line names the database


def test_charges_answered_while_the_state_file_refuses_writes_survive_a_kill(tmp_path: Path) -> None:
    """SQLite refuses every write (simulated with a trigger, as a full disk would): calls are still
    answered and charged, durable in the charge journal. The gateway is then killed; once the state
    file takes writes again, the restarted gateway applies the journal: nothing lost, nothing twice."""
    state = tmp_path / "state.db"
    gw = start_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=str(state))
    try:
        raw = gw.create_key(5)
        with sqlite3.connect(state) as db:
            db.execute("CREATE TRIGGER disk_full BEFORE INSERT ON usage BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        for i in range(3):
            assert "result" in gw.call_tool("add", {"a": i, "b": 0}, raw)
        assert gw.balance(raw) == 2
        assert len(journal_units(tmp_path / "state.db-charges")) == 3  # in the journal, not in SQLite
    finally:
        gw.stop(signal.SIGKILL)
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT credits FROM keys").fetchone()[0] == 5
        db.execute("DROP TRIGGER disk_full")

    again = start_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=str(state))
    try:
        assert again.balance(raw) == 2
        assert again.client.get("/usage", headers=again.admin()).json()["count"] == 3
    finally:
        again.stop()
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT credits FROM keys").fetchone()[0] == 2
    assert journal_units(tmp_path / "state.db-charges") == []  # emptied once SQLite had them
