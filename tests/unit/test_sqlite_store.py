"""The SQLite store: atomic money operations, the ledger, persistence across reopen."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from paygate.core.keys import hash_key
from paygate.core.records import UsageEvent
from paygate.keys.service import KeyService
from paygate.store.sqlite import SQLiteStore


def event(key_hash: str, credits: int) -> UsageEvent:
    return UsageEvent(time.time(), key_hash, "pg_…", "k", "add", credits, True)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "state.db")
    s.open()
    return s


def test_charge_deducts_and_refuses_without_changing_anything(store: SQLiteStore) -> None:
    new = KeyService(store).create("k", 5)
    h = new.record.key_hash
    assert store.charge(h, 3, event(h, 3)).balance == 2
    refused = store.charge(h, 3, event(h, 3))
    assert not refused.ok and refused.balance == 2
    assert store.get_key(h).credits == 2  # type: ignore[union-attr]
    assert len(store.query_usage()) == 1
    assert [e.delta for e in store.ledger(h)] == [5, -3]


def test_surcharge_takes_only_what_the_balance_allows(store: SQLiteStore) -> None:
    h = KeyService(store).create("k", 4).record.key_hash
    assert store.charge_up_to(h, 10, "output:x") == (4, 0)
    assert store.charge_up_to(h, 10, "output:x") == (0, 0)
    assert sum(e.delta for e in store.ledger(h)) == 0


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SQLiteStore(path)
    first.open()
    new = KeyService(first).create("persisted", 10, tags={"team": "a"}, allowed_tools=["add"])
    h = new.record.key_hash
    first.charge(h, 4, event(h, 4))
    first.topup(h, 7, "topup")
    first.set_meta("x", "y")
    first.close()

    second = SQLiteStore(path)
    second.open()
    record = second.get_key(hash_key(new.raw))
    assert record is not None
    assert (record.credits, record.total_spent, record.total_calls) == (13, 4, 1)
    assert record.tags == {"team": "a"} and record.allowed_tools == ["add"]
    assert second.get_meta("x") == "y"
    assert len(second.query_usage()) == 1


def test_raw_keys_are_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    store.open()
    raw = KeyService(store).create("k", 1).raw
    store.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert raw.encode() not in blob
    assert hash_key(raw).encode() in blob


def test_since_filters_usage(store: SQLiteStore) -> None:
    h = KeyService(store).create("k", 10).record.key_hash
    store.charge(h, 1, UsageEvent(100.0, h, "m", "k", "a", 1, True))
    store.charge(h, 1, UsageEvent(200.0, h, "m", "k", "b", 1, True))
    assert [e.tool for e in store.query_usage(since=150.0)] == ["b"]


def test_rekey_moves_balance_counters_and_usage_and_leaves_a_pointer(tmp_path: Path) -> None:
    import dataclasses

    from paygate.core.keys import generate_api_key, mask_parts

    store = SQLiteStore(tmp_path / "state.db")
    store.open()
    old = KeyService(store).create("k", 10, tags={"a": "b"}).record
    old.extra["note"] = "kept"
    old.alias = "prod"
    store.update_key(old)
    store.charge(old.key_hash, 4, event(old.key_hash, 4))
    raw = generate_api_key()
    prefix, last4 = mask_parts(raw)
    new = dataclasses.replace(old, key_hash=hash_key(raw), prefix=prefix, last4=last4)
    generation = store.generation
    store.rekey(old.key_hash, new)
    assert store.generation > generation  # cached policies are dropped
    assert (new.credits, new.total_spent, new.alias, new.active) == (6, 4, "prod", True)
    assert (old.credits, old.active, old.alias) == (0, False, None)
    assert old.extra["rotatedTo"] == new.key_hash and "rotatedTo" not in new.extra
    store.close()

    again = SQLiteStore(tmp_path / "state.db")
    again.open()
    try:
        moved, retired = again.get_key(new.key_hash), again.get_key(old.key_hash)
        assert moved is not None and retired is not None
        assert moved.credits == 6 and moved.alias == "prod" and moved.extra == {"note": "kept"}
        assert retired.credits == 0 and not retired.active and retired.extra["rotatedTo"] == new.key_hash
        assert sum(e.delta for e in again.ledger(new.key_hash)) == 6
        assert sum(e.delta for e in again.ledger(old.key_hash)) == 0
        assert [e.key_hash for e in again.query_usage()] == [new.key_hash]
    finally:
        again.close()


@pytest.mark.parametrize(("mode", "pragma"), [("NORMAL", 1), ("full", 2)])
def test_the_synchronous_mode_is_the_constructors(tmp_path: Path, mode: str, pragma: int) -> None:
    store = SQLiteStore(tmp_path / "s.db", synchronous=mode)
    store.open()
    try:
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == pragma
    finally:
        store.close()
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStore(tmp_path / "s.db", synchronous="OFF; DROP TABLE keys")


def test_the_composition_root_hands_the_setting_to_the_store(tmp_path: Path) -> None:
    from paygate.compose import build_core
    from paygate.config import Settings

    rt = build_core(Settings(state_file=str(tmp_path / "s.db"), server_command="true", sqlite_sync="FULL"))
    try:
        assert rt.store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # type: ignore[attr-defined]
    finally:
        rt.store.close()
