"""The charge journal on the call path (store/group_commit.py): a charge that cannot be journalled is
not forwarded and not charged; one SQLite cannot take yet is answered, kept and written later."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from paygate.store.sqlite import SQLiteStore
from tests.disk_full import disk_full
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, wait_until


def store_of(gw: InProcessGateway) -> SQLiteStore:
    assert gw.rt is not None and isinstance(gw.rt.store, SQLiteStore)
    return gw.rt.store


def stored_credits(state: Path) -> int:
    with sqlite3.connect(state) as db:
        return int(db.execute("SELECT credits FROM keys").fetchone()[0])


def test_a_charge_that_cannot_be_journalled_is_not_forwarded_and_not_charged(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=state) as gw:
        raw = gw.create_key(5)
        journal = store_of(gw)._journal
        assert journal is not None
        with disk_full(journal):
            failed = gw.call_tool("slow", {"seconds": 0.01}, raw)
        assert failed["error"]["code"] == -32603 and "not charged" in failed["error"]["message"]
        assert gw.balance(raw) == 5
        assert "result" in gw.call_tool("slow", {"seconds": 0.02}, raw)
        assert gw.balance(raw) == 4
        started = gw.call_tool("slow_calls", {}, raw)["result"]["content"][0]["text"]
        assert started.startswith("started:0.02;")  # the refused call never reached the backend


def test_charges_sqlite_refuses_are_answered_kept_and_written_once_it_takes_them(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", state_file=str(state)) as gw:
        raw = gw.create_key(5)
        with sqlite3.connect(state) as db:
            db.execute("CREATE TRIGGER disk_full BEFORE INSERT ON usage BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        for i in range(2):
            assert "result" in gw.call_tool("add", {"a": i, "b": 1}, raw)
        assert gw.balance(raw) == 3
        gw.call_in_loop(store_of(gw).flush)  # refused: kept
        assert stored_credits(state) == 5
        with sqlite3.connect(state) as db:
            db.execute("DROP TRIGGER disk_full")
        wait_until(lambda: stored_credits(state) == 3, 10, "the retried batch")  # retried on its own
        assert gw.client.get("/usage", headers=gw.admin()).json()["count"] == 2
