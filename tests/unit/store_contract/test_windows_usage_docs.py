"""RateWindows, UsageLog, Documents and Meta."""

from __future__ import annotations

from collections.abc import Callable

from paygate.store.base import Store
from tests.unit.store_contract.conftest import call, key

T0 = 1_700_000_000.0


# rate windows ------------------------------------------------------------------------------------------------
def test_a_window_admits_up_to_the_limit_then_refuses(store: Store) -> None:
    decisions = [store.rate_hit("s", 2, T0 + i) for i in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert not store.rate_peek("s", 2, T0 + 3).allowed
    assert store.rate_peek("s", 2, T0 + 61).allowed  # the window slid past both hits
    assert store.rate_peek("other", 2, T0).allowed


def test_peek_records_nothing_and_undo_gives_a_hit_back(store: Store) -> None:
    for _ in range(5):
        assert store.rate_peek("s", 1, T0).allowed
    assert store.rate_hit("s", 1, T0).allowed
    store.rate_undo("s")
    assert store.rate_hit("s", 1, T0 + 1).allowed
    assert not store.rate_hit("s", 1, T0 + 2).allowed


def test_a_moved_window_follows_the_new_subject(store: Store) -> None:
    store.rate_hit("old", 1, T0)
    store.rate_move("old", "new")
    assert not store.rate_hit("new", 1, T0 + 1).allowed
    assert store.rate_hit("old", 1, T0 + 1).allowed


def test_sweeping_keeps_live_windows(store: Store) -> None:
    store.rate_hit("live", 1, T0)
    store.rate_hit("idle", 1, T0 - 3600)
    store.rate_sweep(T0 + 1)
    assert not store.rate_hit("live", 1, T0 + 2).allowed
    assert store.rate_hit("idle", 1, T0 + 2).allowed


# usage log ---------------------------------------------------------------------------------------------------
def test_denials_are_recorded_and_queries_filter_by_time_key_and_namespace(store: Store) -> None:
    a, b = key(credits=100), key(credits=100, namespace="ns")
    store.create_key(a)
    store.create_key(b)
    store.charge(a.key_hash, 1, call(a.key_hash, 1, "t1", ts=T0))
    store.record_denial(call(a.key_hash, 0, "t2", ts=T0 + 1, allowed=False))
    store.charge(b.key_hash, 2, call(b.key_hash, 2, "t3", ts=T0 + 2, namespace="ns"))
    assert [u.tool for u in store.query_usage()] == ["t1", "t2", "t3"]  # oldest first
    assert [u.tool for u in store.query_usage(T0 + 1)] == ["t2", "t3"]
    assert [u.tool for u in store.query_usage(key_hash=a.key_hash)] == ["t1", "t2"]
    assert [u.tool for u in store.query_usage(namespace="ns")] == ["t3"]
    assert [u.tool for u in store.query_usage(limit=2)] == ["t2", "t3"]  # the newest two
    denial = store.query_usage(key_hash=a.key_hash)[1]
    assert not denial.allowed and denial.deny_reason == "insufficient_credits"


def test_usage_sums_count_admitted_calls_and_their_credits(store: Store) -> None:
    a, b = key(credits=100), key(credits=100)
    store.create_key(a)
    store.create_key(b)
    store.charge(a.key_hash, 3, call(a.key_hash, 3, ts=T0))
    store.charge(a.key_hash, 4, call(a.key_hash, 4, ts=T0 + 10))
    store.charge(b.key_hash, 1, call(b.key_hash, 1, ts=T0 - 10))
    store.record_denial(call(a.key_hash, 0, ts=T0 + 11, allowed=False))
    assert store.usage_sums(T0) == {a.key_hash: (2, 7)}
    assert store.usage_sums(T0 - 100) == {a.key_hash: (2, 7), b.key_hash: (1, 1)}


async def test_reads_see_acknowledged_deferred_charges(store: Store) -> None:
    a = key(credits=10)
    store.create_key(a)
    result, done = store.charge_deferred(a.key_hash, 2, call(a.key_hash, 2, ts=T0))
    assert result.ok
    assert len(store.query_usage()) == 1  # reads never miss a charge already decided
    assert store.usage_sums(T0) == {a.key_hash: (1, 2)}
    if done is not None:
        await done


# documents ---------------------------------------------------------------------------------------------------
def test_documents_are_copies_except_peek(store: Store) -> None:
    store.doc_put("groups", "g1", {"tools": ["a"]})
    got = store.doc_get("groups", "g1")
    assert got == {"tools": ["a"]}
    got["tools"].append("mutated")  # type: ignore[index]
    for listed in (store.doc_list("groups"), [d for _, d in store.doc_items("groups")]):
        listed[0]["tools"].append("mutated")
    assert store.doc_get("groups", "g1") == {"tools": ["a"]}
    peeked = store.doc_peek("groups", "g1")
    assert peeked == {"tools": ["a"]}
    assert store.doc_peek("groups", "g1") is peeked  # the cached object itself: no copy on the hot path
    scanned = store.doc_scan("groups")
    assert scanned == [{"tools": ["a"]}] and scanned[0] is peeked  # a scan is of the cached objects too
    assert store.doc_scan("nothing-of-this-kind") == []


def test_a_put_document_is_a_copy_of_the_callers(store: Store) -> None:
    body = {"n": [1]}
    store.doc_put("plans", "p", body)
    body["n"].append(2)
    assert store.doc_get("plans", "p") == {"n": [1]}


def test_document_kinds_items_and_delete(store: Store) -> None:
    store.doc_put("teams", "t1", {"n": 1})
    store.doc_put("teams", "t2", {"n": 2})
    store.doc_put("plans", "p", {"n": 3})
    store.doc_put("teams", "t1", {"n": 10})  # replaces
    assert sorted(store.doc_kinds()) == ["plans", "teams"]
    assert sorted(store.doc_items("teams")) == [("t1", {"n": 10}), ("t2", {"n": 2})]
    assert store.doc_delete("plans", "p") and not store.doc_delete("plans", "p")
    assert store.doc_get("plans", "p") is None and store.doc_kinds() == ["teams"]
    assert store.doc_list("nothing") == [] and store.doc_get("nothing", "x") is None


def test_documents_and_meta_survive_a_reopen(store: Store, reopen: Callable[[], Store]) -> None:
    store.doc_put("groups", "g", {"a": {"b": [1, 2]}})
    store.doc_put("groups", "gone", {})
    store.doc_delete("groups", "gone")
    store.set_meta("webhooks.pausedAt", "1")
    store.set_meta("webhooks.pausedAt", "2")
    again = reopen()
    assert again.doc_items("groups") == [("g", {"a": {"b": [1, 2]}})]
    assert again.get_meta("webhooks.pausedAt") == "2"


# meta --------------------------------------------------------------------------------------------------------
def test_meta_is_set_replaced_and_read(store: Store) -> None:
    assert store.get_meta("x") is None
    store.set_meta("x", "1")
    store.set_meta("x", "2")
    store.set_meta("y", "")
    assert (store.get_meta("x"), store.get_meta("y")) == ("2", "")


def test_a_meta_claim_keeps_the_first_value(store: Store) -> None:
    assert store.claim_meta("secret", "first") == "first"
    assert store.claim_meta("secret", "second") == "first" and store.get_meta("secret") == "first"
    store.set_meta("secret", "replaced")
    assert store.claim_meta("secret", "third") == "replaced"


def test_a_conditional_put_is_a_claim_one_caller_wins(store: Store) -> None:
    store.doc_put("reservations", "r1", {"status": "active", "credits": 5})
    assert store.doc_put_if("reservations", "r1", {"status": "releasing", "credits": 5}, "status", "active")
    assert not store.doc_put_if("reservations", "r1", {"status": "committing"}, "status", "active")
    assert not store.doc_put_if("reservations", "missing", {"status": "x"}, "status", "active")
    assert store.doc_get("reservations", "r1") == {"status": "releasing", "credits": 5}
    assert store.doc_get("reservations", "missing") is None


def test_creating_a_document_is_a_claim_of_its_id(store: Store) -> None:
    assert store.doc_create("x402_payment", "p1", {"state": "claimed"})
    assert not store.doc_create("x402_payment", "p1", {"state": "other"})
    assert store.doc_get("x402_payment", "p1") == {"state": "claimed"}
    assert "x402_payment" in store.doc_kinds()
    assert store.doc_delete("x402_payment", "p1") and store.doc_create("x402_payment", "p1", {"state": "again"})


def test_only_the_caller_that_deleted_a_document_is_told_so(store: Store) -> None:
    store.doc_put("schedules", "s1", {"n": 1})
    assert store.doc_delete("schedules", "s1")
    assert not store.doc_delete("schedules", "s1")
