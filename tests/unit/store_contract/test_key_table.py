"""KeyTable: records are read back as written, creation writes the opening ledger entry, only policy fields
are written by `update_key`, uniqueness is the store's `Conflict`, and policy changes bump `generation`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from paygate.store.base import Store
from paygate.store.errors import Conflict, StoreError
from tests.unit.store_contract.conftest import balanced, key


def test_a_created_key_reads_back_and_is_listed(store: Store) -> None:
    record = key(credits=7, tags={"team": "a"}, allowed_tools=["echo"], namespace="ns1")
    store.create_key(record)
    got = store.get_key(record.key_hash)
    assert got is not None and dataclasses.asdict(got) == dataclasses.asdict(record)
    assert [r.key_hash for r in store.list_keys()] == [record.key_hash]
    assert store.get_key("nope") is None


def test_creation_with_credits_writes_one_ledger_entry_of_the_memo_kind(store: Store) -> None:
    funded, empty = key(credits=12), key(credits=0)
    store.create_key(funded, memo="import")
    store.create_key(empty)
    [entry] = store.ledger(funded.key_hash)
    assert (entry.delta, entry.kind, entry.balance_after) == (12, "import", 12)
    assert store.ledger(empty.key_hash) == []
    assert len(store.ledger()) == 1


def test_a_taken_hash_or_alias_is_a_conflict_and_nothing_is_written(store: Store) -> None:
    first = key(credits=5, alias="shop")
    store.create_key(first)
    with pytest.raises(Conflict):
        store.create_key(key(first.key_hash, credits=9))
    with pytest.raises(Conflict):
        store.create_key(key(credits=3, alias="shop"))
    assert len(store.list_keys()) == 1 and balanced(store, first.key_hash) == 5
    assert issubclass(Conflict, StoreError)


def test_update_key_writes_policy_fields_never_money(store: Store) -> None:
    record = key(credits=10)
    store.create_key(record)
    changed = dataclasses.replace(
        record, name="renamed", suspended=True, credits=999, total_spent=50, quota={"dailyCallLimit": 3}
    )
    store.update_key(changed)
    got = store.get_key(record.key_hash)
    assert got is not None and got.name == "renamed" and got.suspended and got.quota == {"dailyCallLimit": 3}
    assert store.ledger(record.key_hash)[-1].balance_after == 10  # no money moved
    assert store.topup(record.key_hash, 1, "t").balance == 11  # the stored balance was not 999


def test_update_to_a_taken_alias_is_a_conflict(store: Store) -> None:
    a, b = key(alias="taken"), key()
    store.create_key(a)
    store.create_key(b)
    with pytest.raises(Conflict):
        store.update_key(dataclasses.replace(b, alias="taken"))


def test_policy_changes_bump_the_generation(store: Store) -> None:
    record = key()
    g0 = store.generation
    store.create_key(record)
    g1 = store.generation
    store.update_key(dataclasses.replace(record, name="x"))
    g2 = store.generation
    store.doc_put("groups", "g", {"n": 1})
    g3 = store.generation
    assert g0 < g1 < g2 < g3


def test_keys_and_policy_survive_a_reopen(store: Store, reopen: Callable[[], Store]) -> None:
    record = key(credits=4, alias="kept", tags={"a": "b"}, expires_at=2e9)
    store.create_key(record)
    store.update_key(dataclasses.replace(record, suspended=True))
    again = reopen()
    got = again.get_key(record.key_hash)
    assert got is not None and got.suspended and got.alias == "kept" and got.tags == {"a": "b"}
    assert got.expires_at == 2e9 and balanced(again, record.key_hash) == 4


def test_close_is_idempotent(store: Store) -> None:
    store.close()
    store.close()
