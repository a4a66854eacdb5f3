from __future__ import annotations

import asyncio

from paygate.core.keys import hash_key
from paygate.mcp.replay import MAX_BYTES
from paygate.mcp.session_rate import SessionRate
from paygate.mcp.sessions import ANONYMOUS_LOG_BYTES, Session, SessionManager


def test_sessions_are_created_found_and_deleted() -> None:
    m = SessionManager()
    s = m.create("2025-06-18")
    assert s is not None and s.id.startswith("mcp_sess_") and len(s.id) == 41
    assert m.get(s.id) is s
    assert m.delete(s.id) and m.get(s.id) is None and not m.delete(s.id)


KEY_A, KEY_B = "pg_key_a", "pg_key_b"


def stream(session: Session) -> None:
    """As an open GET stream does (endpoint.py, get_stream.py)."""
    session.gets += 1
    session.streams.add(asyncio.Queue())


def test_anonymous_pool_full_evicts_its_least_recently_used_even_with_an_open_stream() -> None:
    m = SessionManager(max_anonymous_sessions=2)
    a, b = m.create("v"), m.create("v")
    assert a and b
    stream(a)
    queue = next(iter(a.streams))
    assert m.get(b.id) is b  # b used since: a is the least recent
    c = m.create("v")
    assert c is not None and m.get(a.id) is None and m.get(b.id) is b and len(m) == 2
    assert queue.get_nowait() is None  # its stream was told to end


def test_strangers_never_evict_keyed_sessions() -> None:
    m = SessionManager(max_sessions=2, max_anonymous_sessions=1)
    keyed = m.create("v", KEY_A)
    assert keyed is not None and keyed.owner is not None and keyed.owner != KEY_A  # a hash, not the key
    for _ in range(50):
        assert m.create("v") is not None
    assert m.get(keyed.id) is keyed and m.anonymous_count == 1 and len(m) == 2


def test_a_key_at_its_cap_gives_up_its_own_least_recent_session_without_a_stream_first() -> None:
    m = SessionManager(max_sessions=10, max_sessions_per_key=2)
    s1, s2 = m.create("v", KEY_A), m.create("v", KEY_A)
    other = m.create("v", KEY_B)
    assert s1 and s2 and other
    stream(s1)  # s1 is the least recent but listening: s2 goes
    s3 = m.create("v", KEY_A)
    assert s3 is not None and not m.holds(s2) and m.holds(s1) and m.holds(other)  # (holds: no touch)
    stream(s3)  # all of A's sessions listen: the least recent one goes anyway, its stream ends
    s4 = m.create("v", KEY_A)
    assert s4 is not None and not m.holds(s1) and m.holds(s3) and m.holds(other)


def test_a_full_keyed_pool_gives_up_its_least_recent_session() -> None:
    m = SessionManager(max_sessions=2, max_sessions_per_key=5)
    a, b = m.create("v", KEY_A), m.create("v", KEY_B)
    assert a and b
    stream(a)
    c = m.create("v", KEY_A)
    assert c is not None and m.get(b.id) is None and m.get(a.id) is a and len(m) == 2


def test_no_anonymous_sessions_when_the_pool_is_zero() -> None:
    m = SessionManager(max_anonymous_sessions=0, owner_of_credential=lambda raw: (hash_key(raw), raw == KEY_A))
    assert m.create("v") is None
    assert m.create("v", "pg_unknown") is None  # an unknown key is no key
    assert m.create("v", KEY_A) is not None


def test_sessions_are_bound_to_the_key_that_opened_them() -> None:
    m = SessionManager()
    s = m.create("v", KEY_A)
    assert s is not None
    assert m.find(s.id, None) is None and m.find(s.id, KEY_B) is None
    assert m.find(s.id, KEY_A) is s


def test_an_anonymous_session_is_bound_to_the_first_valid_key_used_on_it() -> None:
    m = SessionManager(
        max_sessions=5, max_anonymous_sessions=5, owner_of_credential=lambda raw: (hash_key(raw), raw != "pg_bad")
    )
    s = m.create("v")
    assert s is not None and s.owner is None and s.log.max_bytes == ANONYMOUS_LOG_BYTES
    assert m.find(s.id, None) is s and m.find(s.id, "pg_bad") is s and s.owner is None  # not a key: no binding
    assert m.find(s.id, KEY_A) is s and s.owner == hash_key(KEY_A) and m.anonymous_count == 0
    assert s.log.max_bytes == MAX_BYTES
    assert m.find(s.id, None) is None and m.find(s.id, KEY_B) is None and m.find(s.id, KEY_A) is s
    assert m.delete(s.id) and len(m) == 0


def test_streams_opened_before_binding_end_when_the_session_is_bound() -> None:
    m = SessionManager(max_sessions=5, max_anonymous_sessions=5)
    s = m.create("v")
    assert s is not None
    stream(s)  # opened without a key: whoever holds it may not own the key that binds the session
    queue = next(iter(s.streams))
    assert m.find(s.id, KEY_A) is s and s.owner == hash_key(KEY_A)
    assert queue.get_nowait() is None  # told to end


def test_binding_respects_the_per_key_cap_and_keeps_the_session_bound() -> None:
    m = SessionManager(max_sessions=5, max_sessions_per_key=1)
    keyed, anonymous = m.create("v", KEY_A), m.create("v")
    assert keyed and anonymous
    assert m.find(anonymous.id, KEY_A) is anonymous
    assert m.get(keyed.id) is None and m.get(anonymous.id) is anonymous and len(m) == 1


def test_idle_sessions_without_streams_are_swept() -> None:
    m = SessionManager(idle_seconds=60)
    s = m.create("v")
    assert s is not None
    s.last_seen = 0.0
    assert m.sweep(now=61.0) == 1 and len(m) == 0


def test_deleting_a_session_ends_its_streams_and_broadcast_reaches_only_streams() -> None:
    m = SessionManager()
    s, quiet = m.create("v"), m.create("v")
    assert s and quiet
    q: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=2)
    s.streams.add(q)
    s.listened = True  # as a GET stream sets it (get_stream.py)
    m.broadcast({"method": "notifications/message"})
    m.broadcast({"method": "second"})
    m.broadcast({"method": "third"})  # a full queue drops its oldest message, never blocks
    frames = [q.get_nowait() or b"" for _ in range(2)]
    assert [f.split(b"\n")[0] for f in frames] == [b"id: 0-2", b"id: 0-3"]  # ids unique in the session
    assert [b'"method":"second"' in frames[0], b'"method":"third"' in frames[1]] == [True, True]
    assert quiet.log.resume(0, 0) == ([], None)  # a session that never listened got nothing
    m.delete(s.id)
    assert q.get_nowait() is None


def test_new_sessions_per_address_per_minute() -> None:
    rate = SessionRate(2)
    assert rate.retry_after("10.0.0.1", 100.0) is None and rate.retry_after("10.0.0.1", 101.0) is None
    assert rate.retry_after("10.0.0.1", 130.0) == 30  # until the window's end
    assert rate.retry_after("10.0.0.2", 130.0) is None  # another address
    assert rate.retry_after("10.0.0.1", 160.0) is None  # a new window
    assert SessionRate(0).retry_after("10.0.0.1") is None
