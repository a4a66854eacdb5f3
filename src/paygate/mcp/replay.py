"""A session's recent SSE events, so a client that lost a stream can resume it (`Last-Event-ID`).

Every event the gateway sends on a session's streams gets an id `<stream>-<n>`, unique within the
session: stream 0 is the session's GET stream, streams 1, 2 … are the POSTs whose answers became
SSE streams. The log keeps the latest events (bounded by count and bytes). A client that
reconnects with `GET /mcp` and `Last-Event-ID` gets the events of *that* stream after that id —
never another stream's, as the spec requires — and, if that stream is a POST still in flight, the
rest of it as it comes, its answer last (the POST's client went away, but its call went on).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque

import orjson

MAX_EVENTS = 256
MAX_BYTES = 256 * 1024  # per keyed session (anonymous ones: sessions.ANONYMOUS_LOG_BYTES)
STANDALONE = 0  # the session's GET stream
KEEPALIVE_SECONDS = 15.0  # a comment on every quiet SSE stream this often, so proxies keep it open


def frame(message: object, event_id: str | None = None) -> bytes:
    head = b"event: message\n" if event_id is None else b"id: " + event_id.encode() + b"\nevent: message\n"
    return head + b"data: " + orjson.dumps(message) + b"\n\n"


def parse_event_id(raw: str) -> tuple[int, int] | None:
    stream, sep, n = raw.strip().partition("-")
    if not sep or not stream.isdigit() or not n.isdigit() or len(raw) > 40:
        return None
    return int(stream), int(n)


class EventLog:
    def __init__(self, max_events: int = MAX_EVENTS, max_bytes: int = MAX_BYTES) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._events: deque[tuple[int, int, bytes]] = deque()  # (stream, n, frame)
        self._bytes = 0
        self._next_n: dict[int, int] = {}
        self._streams = itertools.count(1)
        self._open: set[int] = set()  # POST streams whose answer is not sent yet
        self._followers: dict[int, asyncio.Queue[bytes | None]] = {}  # stream → the GET resuming it

    def open_stream(self) -> int:
        stream = next(self._streams)
        self._open.add(stream)
        return stream

    def next_id(self, stream: int) -> str:
        n = self._next_n.get(stream, 0) + 1
        self._next_n[stream] = n
        return f"{stream}-{n}"

    def record(self, stream: int, message: object) -> bytes:
        """The message as an SSE event with the next id of `stream`, kept for a replay."""
        event_id = self.next_id(stream)
        data = frame(message, event_id)
        self._events.append((stream, self._next_n[stream], data))
        self._bytes += len(data)
        while self._events and (len(self._events) > self.max_events or self._bytes > self.max_bytes):
            self._bytes -= len(self._events.popleft()[2])
        follower = self._followers.get(stream)
        if follower is not None:
            follower.put_nowait(data)
        return data

    def close_stream(self, stream: int) -> None:
        """The POST's answer went out (or was recorded): a GET resuming it ends after the replay."""
        self._open.discard(stream)
        self._next_n.pop(stream, None)  # a stream number is never reused, so its counter can go
        follower = self._followers.pop(stream, None)
        if follower is not None:
            follower.put_nowait(None)

    def resume(self, stream: int, after: int) -> tuple[list[bytes], asyncio.Queue[bytes | None] | None]:
        """The events of `stream` after event `after`, and, for a POST still in flight, a queue of
        what comes next (None ends it). The GET stream's live events come from the session."""
        missed = [data for s, n, data in self._events if s == stream and n > after]
        if stream == STANDALONE or stream not in self._open:
            return missed, None
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        previous = self._followers.get(stream)
        if previous is not None:
            previous.put_nowait(None)  # a newer reconnection takes the stream over
        self._followers[stream] = queue
        return missed, queue

    def end_followers(self) -> None:
        """The session ended: every GET resuming one of its POST streams ends after what it has."""
        for follower in self._followers.values():
            follower.put_nowait(None)
        self._followers.clear()

    def drop_follower(self, stream: int, queue: asyncio.Queue[bytes | None]) -> None:
        if self._followers.get(stream) is queue:
            del self._followers[stream]
