from __future__ import annotations

import asyncio
import time

from paygate.mcp.sessions import SessionManager


def test_sessions_are_created_found_and_deleted() -> None:
    m = SessionManager()
    s = m.create("2025-06-18")
    assert s is not None and s.id.startswith("mcp_sess_") and len(s.id) == 41
    assert m.get(s.id) is s
    assert m.delete(s.id) and m.get(s.id) is None and not m.delete(s.id)


def test_when_full_the_least_recently_used_idle_session_makes_room() -> None:
    m = SessionManager(max_sessions=3)
    a, b, c = (m.create("v") for _ in range(3))
    assert a and b and c
    now = time.time()
    a.last_seen, b.last_seen, c.last_seen = now - 10, now - 20, now - 5  # b is the least recent
    d = m.create("v")
    assert d is not None and m.get(b.id) is None and m.get(a.id) is a and len(m) == 3


def test_sessions_with_open_streams_are_never_evicted() -> None:
    m = SessionManager(max_sessions=2)
    sessions = [m.create("v") for _ in range(2)]
    for s in sessions:
        assert s is not None
        s.streams.add(asyncio.Queue())
    assert m.create("v") is None
    assert all(m.get(s.id) is s for s in sessions if s)


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
