"""Client sessions (`Mcp-Session-Id`) and their server-to-client SSE streams."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from paygate.mcp.replay import STANDALONE, EventLog

MAX_SESSIONS = 1000
MAX_STREAMS_PER_SESSION = 3
IDLE_SECONDS = 30 * 60
STREAM_QUEUE = 256  # messages buffered per stream before the oldest are dropped


@dataclass(slots=True)
class Session:
    id: str
    protocol_version: str
    created: float
    last_seen: float
    capabilities: dict[str, Any] | None = None  # what the client declared at initialize
    streams: set[asyncio.Queue[bytes | None]] = field(default_factory=set)  # open GET streams (SSE events)
    log: EventLog = field(default_factory=EventLog)  # recent events, for Last-Event-ID (replay.py)
    listened: bool = False  # has had a GET stream: what it misses between two is kept for a resume

    def push(self, message: dict[str, Any]) -> None:
        data = self.log.record(STANDALONE, message)
        for queue in self.streams:
            if queue.full():
                queue.get_nowait()  # a stalled reader loses the oldest message, never blocks us
            queue.put_nowait(data)


class SessionManager:
    def __init__(self, max_sessions: int = MAX_SESSIONS, idle_seconds: float = IDLE_SECONDS) -> None:
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, protocol_version: str) -> Session | None:
        now = time.time()
        if len(self._sessions) >= self.max_sessions:
            self.sweep(now)
        if len(self._sessions) >= self.max_sessions and not self._evict_least_recent():
            return None
        session = Session("mcp_sess_" + secrets.token_hex(16), protocol_version, now, now)
        self._sessions[session.id] = session
        return session

    def _evict_least_recent(self) -> bool:
        """Make room by ending the least recently used session that has no open stream, so a
        flood of anonymous `initialize` calls cannot lock real clients out for the idle timeout."""
        idle = [s for s in self._sessions.values() if not s.streams]
        if not idle:
            return False
        self.delete(min(idle, key=lambda s: s.last_seen).id)
        return True

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.last_seen = time.time()
        return session

    def delete(self, session_id: str) -> bool:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        for queue in session.streams:
            queue.put_nowait(None)  # tells the stream to end
        return True

    def sweep(self, now: float | None = None) -> int:
        edge = (now or time.time()) - self.idle_seconds
        stale = [s.id for s in self._sessions.values() if s.last_seen < edge and not s.streams]
        for session_id in stale:
            self.delete(session_id)
        return len(stale)

    def broadcast(self, message: dict[str, Any]) -> None:
        for session in self._sessions.values():
            if session.listened:
                session.push(message)

    def only_listening(self) -> Session | None:
        """The one session with an open stream, if exactly one has (else None)."""
        found: Session | None = None
        for session in self._sessions.values():
            if session.streams:
                if found is not None:
                    return None
                found = session
        return found

    def end_streams(self) -> None:
        """End every open server-to-client stream; the sessions stay (the gateway is stopping)."""
        for session in self._sessions.values():
            for queue in session.streams:
                queue.put_nowait(None)

    def close_all(self) -> None:
        for session_id in list(self._sessions):
            self.delete(session_id)
