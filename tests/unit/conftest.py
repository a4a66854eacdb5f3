from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paygate.core.records import KeyRecord
from paygate.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """An SQLite store on a file, holding one key `h` with 10 credits."""
    s = SQLiteStore(tmp_path / "state.db")
    s.open()
    s.create_key(KeyRecord("h", "pg_abcd", "wxyz", "k", 10, time.time()))
    yield s
    s.close()
