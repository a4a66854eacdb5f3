"""Background WAL checkpoints copy committed pages into the database file, off the writer's path."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from paygate.store.checkpoint import WalCheckpointer
from paygate.store.sqlite import SQLiteStore


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_the_checkpointer_backfills_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # only the background thread may checkpoint
    writer.execute("CREATE TABLE t (x BLOB)")
    before = path.stat().st_size
    for _ in range(50):
        writer.execute("INSERT INTO t VALUES (randomblob(4000))")
    assert path.stat().st_size == before  # everything is still in the WAL
    checkpointer = WalCheckpointer(str(path), interval=0.01)
    checkpointer.start()
    try:
        # both at once: the file grows during the checkpoint, before the thread counts it
        wait_for(lambda: path.stat().st_size > before + 100_000 and checkpointer.checkpoints >= 1)
    finally:
        checkpointer.stop()
        writer.close()


def test_a_file_store_runs_one_checkpointer_and_stops_it_on_close(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.open()
    checkpointer = store._checkpointer
    assert checkpointer is not None and checkpointer._thread.is_alive()
    store.close()
    assert not checkpointer._thread.is_alive()
    memory = SQLiteStore()
    memory.open()
    assert memory._checkpointer is None
    memory.close()
