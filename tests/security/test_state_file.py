"""The SQLite state file: one process at a time (issue 11, item 11) and owner-only (item 12)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from paygate.store.sqlite import MEMORY, SQLiteStore
from paygate.store.state_file import StateFileInUse
from tests.inprocess import running_inprocess_gateway, start_inprocess_gateway
from tests.support import ECHO_COMMAND

SIDE = ("-wal", "-shm", ".lock")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def state_files(state: Path) -> list[Path]:
    return [state, *(state.with_name(state.name + suffix) for suffix in SIDE)]


def test_a_second_store_on_an_open_state_file_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SQLiteStore(path)
    first.open()
    second = SQLiteStore(path)
    with pytest.raises(StateFileInUse) as refused:
        second.open()
    message = str(refused.value)
    assert str(path) in message and f"process {os.getpid()}" in message and "--redis-url" in message
    assert "\n" not in message
    first.close()
    second.open()  # the lock went with the first store
    second.close()


def test_memory_stores_take_no_lock() -> None:
    stores = [SQLiteStore(MEMORY), SQLiteStore(MEMORY)]
    for store in stores:
        store.open()
    for store in stores:
        store.close()


def test_a_second_gateway_on_the_same_state_file_does_not_start(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with (
        running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state),
        pytest.raises(RuntimeError, match="is in use by process"),
    ):
        start_inprocess_gateway("--server", ECHO_COMMAND, state_file=state).stop()
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert gw.client.get("/health").status_code == 200


def test_state_files_and_the_directories_made_for_them_are_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "made" / "for-it" / "state.db"
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=str(state)) as gw:
        gw.create_key(5)  # a write: the WAL has content
        for path in state_files(state):
            assert mode(path) == 0o600, (path, oct(mode(path)))
        assert mode(state.parent) == 0o700 and mode(state.parent.parent) == 0o700


def test_state_files_open_to_others_are_tightened_at_start_with_a_warning(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=str(state)) as gw:
        gw.create_key(5)
    before = mode(tmp_path)
    for path in state_files(state):
        if path.exists():
            path.chmod(0o644)
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=str(state)) as gw:
        for path in state_files(state):
            assert mode(path) == 0o600, (path, oct(mode(path)))
        warnings = [line for line in gw.stderr().splitlines() if "owner-only" in line]
        assert len(warnings) == 1 and "state.db 0644" in warnings[0], gw.stderr()
    assert mode(tmp_path) == before  # the user's own directory is not changed
