"""The audit log (`store.audit`) and the webhook outbox (`store.outbox`) as roles of the store."""

from __future__ import annotations

from collections.abc import Callable

from paygate.store.audit_log import AuditFilter
from paygate.store.base import Store

T0 = 1_700_000_000.0
DAY = 86_400.0


# audit log ---------------------------------------------------------------------------------------------------
def test_audit_append_and_query_newest_first_with_filters(store: Store) -> None:
    log = store.audit
    assert log.max_id() == 0
    first = log.append(T0, "key.created", "admin", {"keyMasked": "pg_a…1111", "credits": 5})
    log.append(T0 + 1, "key.topup", "system", {"keyMasked": "pg_b…2222"})
    log.append_many(
        [
            (100, T0 + 2, "gate.allow", "pg_a…1111", {"keyMasked": "pg_a…1111"}),
            (101, T0 + 3, "key.rotated", "admin", {"oldKeyMasked": "pg_a…1111"}),
        ]
    )
    assert log.max_id() == 101 and first < 100
    assert [e.id for e in log.query(AuditFilter(), 10)] == [101, 100, 2, first]
    assert [e.type for e in log.query(AuditFilter(types=("key.topup", "gate.allow")), 10)] == [
        "gate.allow",
        "key.topup",
    ]
    assert [e.type for e in log.query(AuditFilter(actor="admin", since=T0, until=T0 + 1), 10)] == ["key.created"]
    assert log.count(AuditFilter(actor="admin")) == 2
    assert log.query(AuditFilter(), 1)[0].data == {"oldKeyMasked": "pg_a…1111"}
    # per-key history: admin entries only, any …keyMasked field
    assert [e.type for e in log.about_key("pg_a…1111", 10)] == ["key.rotated", "key.created"]
    stats = log.stats(10)
    assert (stats.total, stats.oldest, stats.newest) == (4, T0, T0 + 3)
    assert stats.by_actor == {"admin": 2, "system": 1, "pg_a…1111": 1}


def test_audit_append_many_replaces_an_existing_id(store: Store) -> None:
    store.audit.append_many([(7, T0, "key.created", "a", {"v": 1})])
    store.audit.append_many([(7, T0, "key.created", "a", {"v": 2})])
    [entry] = store.audit.query(AuditFilter(), 10)
    assert entry.id == 7 and entry.data == {"v": 2}


def test_audit_prune_by_age_and_by_count_apart_for_traffic(store: Store) -> None:
    log = store.audit
    log.append(T0 - 40 * DAY, "key.created", "admin", {})  # too old
    admin = [log.append(T0 + i, "key.topup", "admin", {}) for i in range(4)]
    traffic = [log.append(T0 + 10 + i, "gate.allow", "k", {}) for i in range(5)]
    assert log.traffic_ids(3) == traffic[-3:]
    removed = log.prune(T0 + 20, 3, 30 * DAY)
    assert removed == 1 + 1 + 2
    assert [e.id for e in log.query(AuditFilter(), 100)] == sorted(admin[-3:] + traffic[-3:], reverse=True)
    assert log.delete_traffic_through(traffic[-2]) == 2
    assert log.traffic_ids(10) == traffic[-1:]


def test_audit_entries_survive_a_reopen(store: Store, reopen: Callable[[], Store]) -> None:
    store.audit.append(T0, "key.created", "admin", {"x": [1]})
    again = reopen()
    [entry] = again.audit.query(AuditFilter(), 10)
    assert (entry.type, entry.data) == ("key.created", {"x": [1]}) and again.audit.max_id() == entry.id


# outbox ------------------------------------------------------------------------------------------------------
def enqueue(store: Store, dest: str, n: int, start: float = T0) -> None:
    store.outbox.enqueue([(dest, start + i, "usage", "gate.allow", f'{{"n":{i}}}') for i in range(n)])


def test_enqueued_events_are_pending_per_destination_in_order(store: Store) -> None:
    enqueue(store, "a", 3)
    enqueue(store, "b", 1, T0 + 50)
    store.outbox.enqueue([])
    state = store.outbox.state()
    assert state.pending == {"a": (3, T0), "b": (1, T0 + 50)} and state.batches == [] and state.dead == {}
    events = store.outbox.oldest("a", 2)
    assert [(e.ts, e.kind, e.type, e.event) for e in events] == [
        (T0, "usage", "gate.allow", '{"n":0}'),
        (T0 + 1, "usage", "gate.allow", '{"n":1}'),
    ]
    assert store.outbox.next_ts("a", events[-1].id) == T0 + 2
    assert store.outbox.next_ts("b", 10**9) is None


def test_outbox_to_batch_to_delivered(store: Store) -> None:
    enqueue(store, "a", 3)
    taken = store.outbox.oldest("a", 2)
    batch_id = store.outbox.form_batch("a", taken[-1].id, b'{"events":[1,2]}', 2, ["usage"], T0 + 5)
    state = store.outbox.state()
    assert state.pending == {"a": (1, T0 + 2)}
    [batch] = state.batches
    assert (batch.id, batch.dest, batch.event_count, batch.event_types, batch.attempt, batch.next_at) == (
        batch_id,
        "a",
        2,
        ["usage"],
        0,
        T0 + 5,
    )
    assert store.outbox.batch_body(batch_id) == b'{"events":[1,2]}'
    assert store.outbox.health() == (0, 0)
    store.outbox.reschedule(batch_id, 1, T0 + 60, "HTTP 500")
    assert store.outbox.health() == (1, 0)
    [batch] = store.outbox.state().batches
    assert (batch.attempt, batch.next_at, batch.last_error) == (1, T0 + 60, "HTTP 500")
    store.outbox.delivered(batch_id)
    assert store.outbox.state().batches == [] and store.outbox.batch_body(batch_id) is None


def test_a_batch_becomes_a_dead_letter_and_can_be_replayed_or_cleared(store: Store) -> None:
    enqueue(store, "a", 2)
    enqueue(store, "b", 1)
    ids = []
    for dest in ("a", "b"):
        taken = store.outbox.oldest(dest, 10)
        ids.append(store.outbox.form_batch(dest, taken[-1].id, dest.encode(), len(taken), ["usage"], T0))
    store.outbox.dead_letter(ids[0], 3, "timeout", 0, T0 + 9)
    store.outbox.dead_letter(ids[1], 1, "HTTP 410", 410, T0 + 10)
    assert store.outbox.health() == (0, 2) and store.outbox.state().dead == {"a": 1, "b": 1}
    letters = store.outbox.dead_letters()
    assert [(d.dest, d.body, d.attempts, d.event_count, d.failed_at, d.last_error, d.last_status) for d in letters] == [
        ("a", b"a", 3, 2, T0 + 9, "timeout", 0),
        ("b", b"b", 1, 1, T0 + 10, "HTTP 410", 410),
    ]
    [again] = store.outbox.replay(letters[:1], T0 + 20)
    [batch] = store.outbox.state().batches
    assert batch.id == again and (batch.dest, batch.attempt, batch.next_at, batch.created) == ("a", 0, T0 + 20, T0)
    assert store.outbox.batch_body(again) == b"a" and store.outbox.state().dead == {"b": 1}
    assert store.outbox.clear_dead() == 1 and store.outbox.dead_letters() == []


def test_dead_letters_can_be_deleted_by_id(store: Store) -> None:
    enqueue(store, "a", 1)
    enqueue(store, "b", 1)
    for dest in ("a", "b"):
        taken = store.outbox.oldest(dest, 10)
        batch_id = store.outbox.form_batch(dest, taken[-1].id, dest.encode(), 1, ["usage"], T0)
        store.outbox.dead_letter(batch_id, 1, "HTTP 500", 500, T0 + 1)
    first, second = store.outbox.dead_letters()
    assert store.outbox.delete_dead([first.id, 999_999]) == 1  # an id that is not there is not counted
    assert [d.id for d in store.outbox.dead_letters()] == [second.id] and store.outbox.state().dead == {"b": 1}
    assert store.outbox.delete_dead([]) == 0 and store.outbox.health() == (0, 1)


def test_the_outbox_survives_a_reopen(store: Store, reopen: Callable[[], Store]) -> None:
    enqueue(store, "a", 3)
    taken = store.outbox.oldest("a", 1)
    batch_id = store.outbox.form_batch("a", taken[-1].id, b"body-1", 1, ["usage"], T0)
    store.outbox.reschedule(batch_id, 2, T0 + 99, "down")
    taken = store.outbox.oldest("a", 1)
    store.outbox.dead_letter(store.outbox.form_batch("a", taken[-1].id, b"body-2", 1, ["usage"], T0), 1, "x", 500, T0)
    again = reopen()
    state = again.outbox.state()
    assert state.pending == {"a": (1, T0 + 2)} and state.dead == {"a": 1}
    [batch] = state.batches
    assert (batch.id, batch.attempt, batch.next_at, batch.last_error) == (batch_id, 2, T0 + 99, "down")
    assert again.outbox.batch_body(batch_id) == b"body-1"
    assert [d.body for d in again.outbox.dead_letters()] == [b"body-2"]
