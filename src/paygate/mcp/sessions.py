"""Client sessions (`Mcp-Session-Id`), the credential each is bound to, and their SSE streams.

**Two pools.** A session opened with a valid API key is *keyed*: the keyed pool holds at most
`max_sessions`, and one key at most `max_sessions_per_key`. A key at its cap gives up its own least
recently used session (one without an open stream if it has one; else its least recently used, whose
stream ends), and a full pool gives up its least recently used session the same way, so a paying
client always gets a session and never loses one to a stranger. A session opened without a key is
*anonymous*, in a pool of its own bounded by `max_anonymous_sessions`: when it is full the least
recently used anonymous session goes, open stream or not (the stream ends), so strangers can only
evict strangers. `max_anonymous_sessions = 0`: a key is needed to open a session.

**Bound to a credential.** A session remembers the SHA-256 of the key that opened it (never the key).
An anonymous session is bound to the first valid key used on it, and moves to the keyed pool. From
then on every request on it (POST, GET stream, resumption, DELETE) must carry that key; any other
request — no key, another key — is answered as an unknown session would be (404). A key that stops
resolving (rotated, deleted) loses its sessions the same way: the client opens a new one. Streams
opened while a session was anonymous end when it is bound (their holder may not own the key).

**Replay memory.** Each session keeps its recent events for `Last-Event-ID` (replay.py): keyed
sessions up to `replay.MAX_BYTES`, anonymous ones up to `ANONYMOUS_LOG_BYTES` (raised when bound).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from paygate.core.keys import hash_key
from paygate.mcp.replay import MAX_BYTES, STANDALONE, EventLog

MAX_SESSIONS = 1000
MAX_SESSIONS_PER_KEY = 100
MAX_ANONYMOUS_SESSIONS = 200
MAX_STREAMS_PER_SESSION = 3
IDLE_SECONDS = 30 * 60
STREAM_QUEUE = 256  # messages buffered per stream before the oldest are dropped
ANONYMOUS_LOG_BYTES = 32 * 1024  # an anonymous session's replay log (a keyed one's: replay.MAX_BYTES)


@dataclass(slots=True)
class Session:
    id: str
    protocol_version: str
    created: float
    last_seen: float
    owner: str | None = None  # SHA-256 of the API key it is bound to (never the key); None: anonymous
    capabilities: dict[str, Any] | None = None  # what the client declared at initialize
    streams: set[asyncio.Queue[bytes | None]] = field(default_factory=set)  # open GET streams (SSE events)
    log: EventLog = field(default_factory=EventLog)  # recent events, for Last-Event-ID (replay.py)
    listened: bool = False  # has had a GET stream: what it misses between two is kept for a resume
    gets: int = 0  # open GET /mcp requests on it: standalone streams and resumptions alike

    def push(self, message: dict[str, Any]) -> None:
        data = self.log.record(STANDALONE, message)
        for queue in self.streams:
            if queue.full():
                queue.get_nowait()  # a stalled reader loses the oldest message, never blocks us
            queue.put_nowait(data)


def _own_hash(raw: str) -> tuple[str, bool]:
    return hash_key(raw), True


class SessionManager:
    def __init__(
        self,
        max_sessions: int = MAX_SESSIONS,
        idle_seconds: float = IDLE_SECONDS,
        *,
        max_sessions_per_key: int = MAX_SESSIONS_PER_KEY,
        max_anonymous_sessions: int = MAX_ANONYMOUS_SESSIONS,
        max_streams_per_session: int = MAX_STREAMS_PER_SESSION,
        owner_of_credential: Callable[[str], tuple[str, bool]] = _own_hash,
    ) -> None:
        self.max_sessions = max_sessions
        self.max_sessions_per_key = max_sessions_per_key
        self.max_anonymous_sessions = max_anonymous_sessions
        self.max_streams_per_session = max_streams_per_session
        self.idle_seconds = idle_seconds
        # a raw credential → what a session opened with it is bound to, and whether it names a key, itself or
        # as a valid token (only those bind sessions)
        self.owner_of_credential = owner_of_credential
        self._sessions: dict[str, Session] = {}
        self._anonymous: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._keyed: OrderedDict[str, Session] = OrderedDict()
        self._per_key: dict[str, OrderedDict[str, Session]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def anonymous_count(self) -> int:
        return len(self._anonymous)

    def owner_of(self, raw_key: str | None) -> str | None:
        """What a session opened with this credential is bound to (the credential's own hash, so a token's
        session is not its key's; an OAuth grant, so a session outlives refreshes): None for none, or one
        that names no key."""
        if not raw_key:
            return None
        owner, valid = self.owner_of_credential(raw_key)
        return owner if valid else None

    def create(self, protocol_version: str, raw_key: str | None = None) -> Session | None:
        """A new session, bound to `raw_key` if it is a valid key; None when a key is needed."""
        owner = self.owner_of(raw_key)
        if owner is None:
            if self.max_anonymous_sessions == 0:
                return None
            while len(self._anonymous) >= self.max_anonymous_sessions:
                self.delete(next(iter(self._anonymous)))  # the least recently used stranger, stream or not
        else:
            self._make_room(owner, None)
        now = time.time()
        session = Session("mcp_sess_" + secrets.token_hex(16), protocol_version, now, now, owner)
        if owner is None:
            session.log.max_bytes = ANONYMOUS_LOG_BYTES
        self._add(session)
        return session

    def _add(self, session: Session) -> None:
        self._sessions[session.id] = session
        owner = session.owner
        if owner is None:
            self._anonymous[session.id] = session
        else:
            self._keyed[session.id] = session
            self._per_key.setdefault(owner, OrderedDict())[session.id] = session

    def _make_room(self, owner: str, keep: Session | None) -> None:
        """Room in the keyed pool for one more session of `owner` (never evicting `keep`)."""
        mine = self._per_key.get(owner)
        while mine and len(mine) >= self.max_sessions_per_key:
            self.delete(_least_recent(mine.values(), keep).id)
        while len(self._keyed) >= self.max_sessions:
            self.delete(_least_recent(self._keyed.values(), keep).id)

    def find(self, session_id: str, raw_key: str | None) -> Session | None:
        """The session, if this request's credential may use it (else None, as for an unknown id).
        An anonymous session is bound to the first valid key used on it."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        owner = session.owner
        if owner is not None:
            if raw_key is None:
                return None
            # the credential's own hash first (keys, scoped tokens): only an OAuth token's grant needs resolving
            if not hmac.compare_digest(hash_key(raw_key), owner) and not hmac.compare_digest(
                self.owner_of_credential(raw_key)[0], owner
            ):
                return None
        elif raw_key is not None and (new_owner := self.owner_of(raw_key)) is not None:
            self._bind(session, new_owner)
        self._touch(session)
        return session

    def _bind(self, session: Session, owner: str) -> None:
        # Streams opened while it was anonymous were opened without this key: whoever holds them may not be
        # its owner, so they end here (a client reconnects with its key and resumes with Last-Event-ID).
        _end_streams(session)
        del self._anonymous[session.id]
        self._make_room(owner, session)
        session.owner = owner
        session.log.max_bytes = MAX_BYTES
        self._add(session)

    def _touch(self, session: Session) -> None:
        session.last_seen = time.time()
        owner = session.owner
        if owner is None:
            self._anonymous.move_to_end(session.id)
        else:
            self._keyed.move_to_end(session.id)
            self._per_key[owner].move_to_end(session.id)

    def get(self, session_id: str) -> Session | None:
        """The session by id alone, whoever asks (tests, internal use): no credential check."""
        session = self._sessions.get(session_id)
        if session is not None:
            self._touch(session)
        return session

    def holds(self, session: Session) -> bool:
        """Whether this very session is still open (not ended, evicted or replaced)."""
        return self._sessions.get(session.id) is session

    def delete(self, session_id: str) -> bool:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        owner = session.owner
        if owner is None:
            del self._anonymous[session_id]
        else:
            del self._keyed[session_id]
            mine = self._per_key[owner]
            del mine[session_id]
            if not mine:
                del self._per_key[owner]
        _end_streams(session)
        return True

    def sweep(self, now: float | None = None) -> int:
        edge = (now or time.time()) - self.idle_seconds
        stale = [s.id for s in self._sessions.values() if s.last_seen < edge and not s.gets and not s.streams]
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
            session.log.end_followers()

    def close_all(self) -> None:
        for session_id in list(self._sessions):
            self.delete(session_id)


def _least_recent(sessions: Iterable[Session], keep: Session | None) -> Session:
    """The least recently used of `sessions` (in that order) without an open stream, else the least
    recently used; never `keep`."""
    first: Session | None = None
    for session in sessions:
        if session is keep:
            continue
        if not session.gets and not session.streams:
            return session
        if first is None:
            first = session
    assert first is not None, "a full pool holds another session"
    return first


def _end_streams(session: Session) -> None:
    for queue in session.streams:
        queue.put_nowait(None)  # tells the stream to end
    session.log.end_followers()  # and any resumption of one of its POST streams
