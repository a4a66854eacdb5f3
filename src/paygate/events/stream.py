"""Fan-out of published events to the admin event stream's clients (GET /admin/events).

`EventStreamHub.publish` is an *inline* subscriber of the event bus: it runs inside every
`publish`, including the tool call's, so it only offers the event to each open stream's bounded
queue (`put_nowait`) and never waits. A stream that falls `queue_size` events behind is ended
rather than allowed to grow or to slow the publisher; the client may reconnect. At most
`max_streams` are open at once. `shut` ends every stream and refuses new ones (gateway shutdown).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from paygate.core.domain_errors import TooMany, Unavailable
from paygate.events.hub import Event

MAX_STREAMS = 20
QUEUE_SIZE = 1000


class TooManyStreams(TooMany):
    """`max_streams` are open already."""


class HubClosed(Unavailable):
    """The gateway is shutting down: no new streams."""


class StreamClient:
    """One open stream: the event types it wants (empty: all) and its queue. `None` in the queue, or
    `ended`, tells the reader to stop."""

    __slots__ = ("ended", "queue", "types")

    def __init__(self, types: frozenset[str], queue_size: int) -> None:
        self.types = types
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(queue_size)
        self.ended = False

    def offer(self, event: Event) -> bool:
        """Queue the event if the client wants it; False when the queue is full (the client is too far behind)."""
        if self.types and event.type not in self.types:
            return True
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    def end(self) -> None:
        self.ended = True
        # Wake a reader waiting on an empty queue; a full queue's reader is not waiting and sees `ended`.
        if not self.queue.full():
            self.queue.put_nowait(None)


class EventStreamHub:
    def __init__(self, max_streams: int = MAX_STREAMS, queue_size: int = QUEUE_SIZE) -> None:
        self.max_streams = max_streams
        self.queue_size = queue_size
        self._clients: set[StreamClient] = set()
        self.dropped = 0  # streams ended for falling behind
        self.closed = False

    def __len__(self) -> int:
        return len(self._clients)

    def open(self, types: Iterable[str] = ()) -> StreamClient:
        if self.closed:
            raise HubClosed("The gateway is shutting down")
        if len(self._clients) >= self.max_streams:
            raise TooManyStreams(
                f"Too many admin event streams: at most {self.max_streams} admin event streams may be open at once"
            )
        client = StreamClient(frozenset(types), self.queue_size)
        self._clients.add(client)
        return client

    def close(self, client: StreamClient) -> None:
        self._clients.discard(client)
        client.end()

    def publish(self, event: Event) -> None:
        if not self._clients:
            return
        for client in tuple(self._clients):
            if not client.offer(event):
                self.dropped += 1
                self.close(client)

    def close_all(self) -> None:
        for client in tuple(self._clients):
            self.close(client)

    def shut(self) -> None:
        """End every stream and accept no new one (the gateway is stopping)."""
        self.closed = True
        self.close_all()

    async def stop(self) -> None:
        """The same, as a shutdown step (the streams normally end on the exit signal already: uvicorn
        waits for open responses before the lifespan's shutdown runs)."""
        self.shut()
