"""The audit log and the webhook outbox on a real redis-server: every method, the fleet's needs (ids unique
across processes, one outbox partition per instance, adopting a dead instance's partition) and a lost server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis

from paygate.store.audit_log import AuditFilter
from paygate.store.errors import StoreUnavailable
from paygate.store.redis_backend import audit as audit_module
from paygate.store.redis_backend.audit import RedisAuditLog
from paygate.store.redis_backend.names import Names
from paygate.store.redis_backend.outbox import RedisOutbox
from tests.redis_server import RedisServer, running_redis

T0 = 1_700_000_000.0
DAY = 86_400.0


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with running_redis() as s:
        yield s


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    c = server.client()
    yield c
    c.close()


@pytest.fixture
def names() -> Names:
    return Names("t" + uuid.uuid4().hex[:12])


@pytest.fixture
def log(client: redis.Redis, names: Names) -> RedisAuditLog:
    return RedisAuditLog(client, names)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 3 ids: every scan and every prune crosses chunk boundaries with a handful of entries."""
    monkeypatch.setattr(audit_module, "CHUNK", 3)
    monkeypatch.setattr(audit_module, "TS_FETCH_MAX", 4)


def ids(entries: list[Any]) -> list[int]:
    return [e.id for e in entries]


# audit log ---------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("small_chunks")
def test_audit_filters_counts_and_stats_across_chunks(log: RedisAuditLog) -> None:
    assert (log.max_id(), log.query(AuditFilter(), 10), log.count(AuditFilter())) == (0, [], 0)
    empty = log.stats(5)
    assert (empty.total, empty.oldest, empty.newest, empty.by_type, empty.by_actor) == (0, None, None, {}, {})
    made = [
        log.append(T0 + i, "gate.allow" if i % 2 else "key.topup", "a:{x}" if i % 3 else "admin", {"i": i})
        for i in range(12)
    ]
    assert made == sorted(made) and len(set(made)) == 12
    assert ids(log.query(AuditFilter(), 100)) == made[::-1]
    assert ids(log.query(AuditFilter(), 5)) == made[::-1][:5]
    assert ids(log.query(AuditFilter(), -1)) == made[::-1]  # as SQLite's LIMIT -1
    assert log.query(AuditFilter(), 0) == []
    topups = [m for i, m in enumerate(made) if i % 2 == 0]
    assert ids(log.query(AuditFilter(types=("key.topup", "key.topup")), 100)) == topups[::-1]
    assert ids(log.query(AuditFilter(types=("key.topup", "gate.allow", "nothing")), 100)) == made[::-1]
    admin = [m for i, m in enumerate(made) if i % 3 == 0]
    assert ids(log.query(AuditFilter(actor="admin"), 100)) == admin[::-1]
    assert ids(log.query(AuditFilter(types=("key.topup",), actor="admin"), 100)) == [made[6], made[0]]
    # time ranges, inclusive: a small one read whole, a large one scanned by id
    assert ids(log.query(AuditFilter(since=T0 + 2, until=T0 + 4), 100)) == [made[4], made[3], made[2]]
    assert ids(log.query(AuditFilter(since=T0 + 3), 100)) == made[3:][::-1]
    assert ids(log.query(AuditFilter(since=T0 + 3, actor="a:{x}", types=("gate.allow",)), 2)) == [made[11], made[7]]
    for where, expected in [
        (AuditFilter(), 12),
        (AuditFilter(types=("key.topup", "nothing")), 6),
        (AuditFilter(actor="admin"), 4),
        (AuditFilter(since=T0 + 10), 2),
        (AuditFilter(until=T0 + 9), 10),
        (AuditFilter(types=("gate.allow",), actor="admin"), 2),
        (AuditFilter(types=("gate.allow",), since=T0 + 5, until=T0 + 9), 3),
        (AuditFilter(actor="nobody"), 0),
    ]:
        assert log.count(where) == expected, where
    stats = log.stats(1)
    assert (stats.total, stats.oldest, stats.newest) == (12, T0, T0 + 11)
    assert stats.by_type == {"gate.allow": 6, "key.topup": 6} and stats.by_actor == {"a:{x}": 8}
    assert log.stats(0).by_actor == {}


@pytest.mark.usefixtures("small_chunks")
def test_audit_about_key_matches_any_keymasked_field_of_admin_entries(log: RedisAuditLog) -> None:
    created = log.append(T0, "key.created", "admin", {"keyMasked": "pg_a…1111"})
    log.append(T0 + 1, "gate.allow", "pg_a…1111", {"keyMasked": "pg_a…1111"})  # traffic: never
    failed = log.append(T0 + 2, "admin.auth_failed", "1.2.3.4", {"KEYMASKED": "pg_a…1111"})
    log.append(T0 + 3, "key.topup", "admin", {"keyMasked": "pg_b…2222", "note": "pg_a…1111"})  # not a key field
    log.append(T0 + 4, "key.topup", "admin", {"keyMasked": 1111})  # not text
    rotated = log.append(T0 + 5, "key.rotated", "admin", {"oldKeyMasked": "pg_a…1111"})
    assert ids(log.about_key("pg_a…1111", 10)) == [rotated, failed, created]
    assert ids(log.about_key("pg_a…1111", 1)) == [rotated]
    assert log.about_key("pg_a…1111", 0) == [] and log.about_key("pg_z…0000", 10) == []


def test_audit_data_round_trips_and_odd_values_become_text(log: RedisAuditLog) -> None:
    ts = T0 + 0.123456789
    data = {"nested": {"list": [1, 2.5, None, True]}, "text": 'é\n"\\ 🙂', "big": 2**60}
    entry_id = log.append(ts, "ty:pe {x}", "act\nor", {**data, "amount": Decimal("1.10")})
    [entry] = log.query(AuditFilter(types=("ty:pe {x}",), actor="act\nor"), 10)
    assert (entry.id, entry.timestamp, entry.type, entry.actor) == (entry_id, ts, "ty:pe {x}", "act\nor")
    assert entry.data == {**data, "amount": "1.10"}


def test_audit_append_many_replaces_a_restored_row_and_its_indexes(log: RedisAuditLog) -> None:
    log.append_many([(5, T0, "gate.allow", "k", {"v": 1}), (6, T0 + 1, "key.topup", "admin", {})])
    log.append_many([(5, T0 + 2, "key.created", "admin", {"v": 2})])
    assert log.traffic_ids(10) == [] and log.count(AuditFilter(types=("gate.allow",))) == 0
    assert log.count(AuditFilter(actor="admin")) == 2 and log.count(AuditFilter(actor="k")) == 0
    stats = log.stats(10)
    assert (stats.total, stats.by_type, stats.by_actor) == (2, {"key.created": 1, "key.topup": 1}, {"admin": 2})
    assert [(e.id, e.data) for e in log.query(AuditFilter(), 10)] == [(6, {}), (5, {"v": 2})]
    log.append_many([])


@pytest.mark.usefixtures("small_chunks")
def test_audit_retention_keeps_three_budgets_apart(log: RedisAuditLog) -> None:
    old = [log.append(T0 - 40 * DAY + i, "key.created", "admin", {}) for i in range(2)]
    traffic = [log.append(T0 + i, "gate.deny" if i % 2 else "gate.allow", "k", {}) for i in range(10)]
    failures = [
        log.append(T0 + i, "admin.auth_throttled" if i % 2 else "admin.auth_failed", "ip", {}) for i in range(8)
    ]
    admin = [log.append(T0 + i, "key.topup", "admin", {}) for i in range(7)]
    assert log.traffic_ids(4) == traffic[-4:] and log.traffic_ids(0) == []
    removed = log.prune(T0 + 20, 4, 30 * DAY, max_auth_failures=2)
    assert removed == 2 + 6 + 6 + 3
    assert ids(log.query(AuditFilter(), 100)) == sorted(traffic[-4:] + failures[-2:] + admin[-4:], reverse=True)
    assert old[0] not in ids(log.query(AuditFilter(), 100))
    assert log.prune(T0 + 20, 4, 30 * DAY, max_auth_failures=2) == 0
    assert log.delete_traffic_through(traffic[-2]) == 3 and log.traffic_ids(10) == traffic[-1:]
    assert log.delete_traffic_through(0) == 0
    assert log.prune(T0 + 20, 0, 30 * DAY, max_auth_failures=0) == 1 + 2 + 4
    assert log.stats(10).total == 0 and log.stats(10).by_type == {}


def test_audit_ids_stay_unique_across_processes_and_reserved_blocks(
    server: RedisServer, client: redis.Redis, names: Names
) -> None:
    other_client = server.client()
    try:
        first, second = RedisAuditLog(client, names), RedisAuditLog(other_client, names)
        handed: list[int] = []
        appended: list[int] = []
        for i in range(6):
            writer = first if i % 2 == 0 else second
            appended.append(writer.append(T0 + i, "key.topup", "admin", {"i": i}))
            handed.append(appended[-1])
            block = writer.reserve_ids(3)
            handed += range(block, block + 3)
            writer.append_many([(block, T0 + i, "gate.allow", "k", {}), (None, T0 + i, "gate.deny", "k", {})])
            handed.append(max(e.id for e in writer.query(AuditFilter(types=("gate.deny",)), 1)))
        assert len(handed) == len(set(handed))  # no id given twice, reserved or allocated
        assert appended == sorted(appended)  # allocated ids grow with insertion order, whichever process appends
        assert ids(second.query(AuditFilter(types=("key.topup",)), 100)) == appended[::-1]
        assert first.max_id() == second.max_id() == max(handed)
        unused = second.reserve_ids(5)
        assert first.max_id() == unused + 4  # a reserved, never used id is never handed out again
        # a caller's id above the counter pushes later allocations above it
        first.append_many([(10_000, T0, "key.topup", "admin", {})])
        assert first.append(T0, "key.topup", "admin", {}) == 10_001 and second.reserve_ids(1) == 10_002
        with pytest.raises(ValueError):
            first.reserve_ids(0)
    finally:
        other_client.close()


def test_a_client_that_decodes_responses_is_refused(server: RedisServer, names: Names) -> None:
    decoding = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        with pytest.raises(ValueError):
            RedisAuditLog(decoding, names)
        with pytest.raises(ValueError):
            RedisOutbox(decoding, names, "a")
    finally:
        decoding.close()


# outbox ------------------------------------------------------------------------------------------------------
@pytest.fixture
def outbox(client: redis.Redis, names: Names) -> RedisOutbox:
    return RedisOutbox(client, names, "gw-a")


def queue(box: RedisOutbox, dest: str, n: int, start: float = T0) -> None:
    box.enqueue([(dest, start + i, "usage", "gate.allow", f'{{"n":{i},"é":"🙂"}}') for i in range(n)])


def batch_of(box: RedisOutbox, dest: str, body: bytes, size: int = 10, now: float = T0) -> int:
    taken = box.oldest(dest, size)
    return box.form_batch(dest, taken[-1].id, body, len(taken), ["usage"], now)


def test_outbox_keeps_timestamps_events_and_bodies_exact(outbox: RedisOutbox) -> None:
    ts = T0 + 0.123456789
    event = '{"x": "é\\n\\u0000", "y": 1.0000000000000002}'
    outbox.enqueue([("https://h:1/p?q={a}", ts, "event", "key.created", event)])
    [queued] = outbox.oldest("https://h:1/p?q={a}", 5)
    assert (queued.ts, queued.kind, queued.type, queued.event) == (ts, "event", "key.created", event)
    assert outbox.state().pending == {"https://h:1/p?q={a}": (1, ts)}
    body = bytes(range(256)) + b"\n\r\x00"
    batch_id = outbox.form_batch("https://h:1/p?q={a}", queued.id, body, 1, ["key.created"], ts)
    assert outbox.batch_body(batch_id) == body
    [batch] = outbox.state().batches
    assert (batch.created, batch.next_at, batch.body, batch.last_error) == (ts, ts, None, None)
    outbox.dead_letter(batch_id, 1, "x", 0, ts + 1)
    [letter] = outbox.dead_letters()
    assert (letter.body, letter.created, letter.failed_at) == (body, ts, ts + 1)
    [again] = outbox.replay([letter], ts + 2)
    assert outbox.batch_body(again) == body
    empty = outbox.form_batch("d", 0, b"", 0, [], T0)
    assert outbox.batch_body(empty) == b""


def test_outbox_unknown_ids_and_destinations_change_nothing(outbox: RedisOutbox) -> None:
    queue(outbox, "a", 2)
    assert outbox.oldest("nowhere", 5) == [] and outbox.oldest("a", 0) == []
    assert outbox.next_ts("nowhere", 0) is None and outbox.next_ts("a", 0) == T0
    assert outbox.batch_body(10**9) is None
    outbox.delivered(10**9)
    outbox.reschedule(10**9, 3, T0, "gone")
    outbox.dead_letter(10**9, 3, "gone", 500, T0)
    assert outbox.replay([], T0) == [] and outbox.clear_dead() == 0
    state = outbox.state()
    assert (state.pending, state.batches, state.dead, outbox.health()) == ({"a": (2, T0)}, [], {}, (0, 0))
    # a batch through an id below every queued one takes nothing from the queue (as on SQLite)
    outbox.form_batch("a", 0, b"b", 0, [], T0)
    assert outbox.state().pending == {"a": (2, T0)}
    with pytest.raises(ValueError):
        RedisOutbox(outbox._r, Names("x"), "has:colon")


def test_outbox_retries_count_until_delivered_or_dead(outbox: RedisOutbox) -> None:
    queue(outbox, "a", 3)
    first = batch_of(outbox, "a", b"1", size=1)
    second = batch_of(outbox, "a", b"2", size=1)
    assert outbox.state().pending == {"a": (1, T0 + 2)}
    assert outbox.next_ts("a", outbox.oldest("a", 1)[0].id) is None
    outbox.reschedule(first, 1, T0 + 5, "HTTP 500")
    outbox.reschedule(second, 2, T0 + 9, "HTTP 502")
    assert outbox.health() == (2, 0)
    outbox.reschedule(second, 0, T0, "reset")
    assert outbox.health() == (1, 0)
    outbox.dead_letter(first, 2, "timeout", 0, T0 + 10)
    assert outbox.health() == (0, 1)
    [letter] = outbox.dead_letters()
    assert (letter.attempts, letter.last_error, letter.last_status, letter.event_types) == (2, "timeout", 0, ["usage"])
    outbox.delivered(second)
    assert outbox.state().batches == [] and outbox.state().dead == {"a": 1}


def test_two_owners_see_only_their_own_partition(client: redis.Redis, names: Names) -> None:
    a, b = RedisOutbox(client, names, "gw-a"), RedisOutbox(client, names, "gw-b")
    queue(a, "shared", 2)
    queue(b, "shared", 1, T0 + 100)
    assert a.state().pending == {"shared": (2, T0)} and b.state().pending == {"shared": (1, T0 + 100)}
    event_ids = [e.id for e in a.oldest("shared", 10) + b.oldest("shared", 10)]
    batch_a, batch_b = batch_of(a, "shared", b"A"), batch_of(b, "shared", b"B")
    assert b.batch_body(batch_a) is None and a.batch_body(batch_b) is None
    a.dead_letter(batch_a, 1, "x", 500, T0)
    b.dead_letter(batch_b, 1, "x", 500, T0)
    assert a.health() == b.health() == (0, 1)
    letters = a.dead_letters() + b.dead_letters()
    assert [d.body for d in letters] == [b"A", b"B"]
    assert a.clear_dead() == 1 and b.state().dead == {"shared": 1}
    [replayed] = b.replay(b.dead_letters(), T0)
    # ids come from counters shared by the owners: unique across partitions (adopt relies on it)
    assert len(set(event_ids)) == 3 and len({batch_a, batch_b, replayed}) == 3 and len({d.id for d in letters}) == 2
    assert a.owners() == ["gw-b"] == b.owners()


def test_adopt_moves_a_partition_exactly_once(client: redis.Redis, names: Names) -> None:
    dead, heir = RedisOutbox(client, names, "gw-dead"), RedisOutbox(client, names, "gw-heir")
    assert heir.adopt("gw-never-seen") == 0 and heir.owners() == []
    queue(dead, "a", 4)
    queue(heir, "a", 1, T0 + 50)
    queue(dead, "b", 1, T0 + 60)
    retried = batch_of(dead, "a", b"\xffretry", size=2)
    dead.reschedule(retried, 3, T0 + 90, "HTTP 503")
    letter_batch = batch_of(dead, "a", b"dead\x00", size=1)
    dead.dead_letter(letter_batch, 4, "gone", 410, T0 + 70)
    before = dead.state()
    assert sorted(heir.owners()) == ["gw-dead", "gw-heir"]
    assert heir.adopt("gw-dead") == 2 + 1 + 1  # queued (a: 1, b: 1), a batch, a dead letter
    gone = dead.state()
    assert (gone.pending, gone.batches, gone.dead, dead.health(), dead.dead_letters()) == ({}, [], {}, (0, 0), [])
    assert heir.adopt("gw-dead") == 0 and heir.owners() == ["gw-heir"]
    state = heir.state()
    assert state.pending == {"a": (2, T0 + 3), "b": (1, T0 + 60)} and state.batches == before.batches
    assert heir.batch_body(retried) == b"\xffretry" and heir.health() == (1, 1)
    [letter] = heir.dead_letters()
    assert (letter.body, letter.attempts, letter.last_status) == (b"dead\x00", 4, 410)
    # the adopted events merge with the heir's own, in id order, and leave through the heir's batches
    merged = heir.oldest("a", 10)
    assert [e.ts for e in merged] == [T0 + 3, T0 + 50]
    batch_of(heir, "a", b"merged")
    assert heir.state().pending == {"b": (1, T0 + 60)}
    with pytest.raises(ValueError):
        heir.adopt("gw-heir")


def test_a_stopped_server_is_store_unavailable_then_served_again(names: Names) -> None:
    with running_redis() as server:
        c = redis.Redis.from_url(server.url, socket_timeout=2.0, socket_connect_timeout=2.0)
        try:
            log, box = RedisAuditLog(c, names), RedisOutbox(c, names, "gw")
            log.append(T0, "key.created", "admin", {})
            server.stop()
            calls = [
                lambda: log.append(T0, "key.topup", "admin", {}),
                lambda: log.append_many([(None, T0, "key.topup", "admin", {})]),
                lambda: log.reserve_ids(3),
                lambda: log.traffic_ids(3),
                lambda: log.delete_traffic_through(9),
                lambda: log.max_id(),
                lambda: log.query(AuditFilter(actor="admin"), 3),
                lambda: log.about_key("pg", 3),
                lambda: log.count(AuditFilter(types=("a",), actor="b")),
                lambda: log.stats(3),
                lambda: log.prune(T0, 1, DAY),
                lambda: box.state(),
                lambda: box.enqueue([("d", T0, "usage", "gate.allow", "{}")]),
                lambda: box.oldest("d", 1),
                lambda: box.next_ts("d", 0),
                lambda: box.form_batch("d", 1, b"b", 1, [], T0),
                lambda: box.batch_body(1),
                lambda: box.delivered(1),
                lambda: box.reschedule(1, 1, T0, "e"),
                lambda: box.dead_letter(1, 1, "e", 0, T0),
                lambda: box.dead_letters(),
                lambda: box.clear_dead(),
                lambda: box.health(),
                lambda: box.adopt("other"),
                lambda: box.owners(),
            ]
            for call in calls:
                with pytest.raises(StoreUnavailable):
                    call()
            server.start()  # same port, empty (no AOF): the same client reconnects by itself
            assert log.append(T0, "key.created", "admin", {}) == 1 and box.health() == (0, 0)
        finally:
            c.close()


def test_a_large_backlog_moves_into_one_batch(outbox: RedisOutbox) -> None:
    """More events than Lua's unpack() takes at once: the script deletes them a slice at a time."""
    outbox.enqueue([("a", T0 + i, "usage", "gate.allow", str(i)) for i in range(2500)])
    taken = outbox.oldest("a", 2400)
    assert [e.event for e in taken[:2]] == ["0", "1"] and len(taken) == 2400
    outbox.form_batch("a", taken[-1].id, b"big", 2400, ["usage"], T0)
    assert outbox.state().pending == {"a": (100, T0 + 2400)}
    assert outbox.next_ts("a", taken[-1].id) == T0 + 2400
