"""The one internal event bus: every state change and gate decision is published here, once.

Two kinds of subscriber:

- **inline** (`subscribe`): called synchronously inside `publish`. Only for cheap, in-memory work
  that must see the event at once (a restore making a service re-read its documents, the admin
  SSE stream's fan-out to in-memory queues).
- **deferred** (`subscribe_batch`): called with a batch of events *after* the publisher has
  returned — within DRAIN_DELAY_SECONDS, or at once when no loop is running (start-up, unit tests).
  The audit log, webhooks, alerts and the request log are deferred subscribers, so a tool call
  never waits for a disk write, an HTTP delivery or an alert rule. `flush()` delivers what is
  pending now; readers that must see their own writes (GET /audit) call it first.

Each event gets an `id` from one counter, seeded past the audit log's highest id at start, so the
audit entry, the SSE message and the webhook payload of one event share its id. `key_hash` (who
the event is about) is for routing only (per-key webhooks, alerts) and is never serialised;
events carry keys masked (first 7 + last 4) in their data.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

log = logging.getLogger("paygate.events")

# Per-call traffic: published on every tools/call, so never logged one line each (DESIGN: nothing is
# logged per call); every other event is logged at INFO as one JSON object.
GATE_EVENTS = frozenset({"gate.allow", "gate.deny"})
MAX_PENDING = 50_000  # past this, `publish` delivers synchronously rather than grow without bound
# Deferred delivery waits this long after the first pending event: under load, one batch (one audit
# transaction) then carries hundreds of calls' events instead of a handful.
DRAIN_DELAY_SECONDS = 0.02
DRAIN_CHUNK = 64  # events handed to the deferred subscribers per pass of the loop


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~3x, on every tool call. Read only.
class Event:
    type: str  # e.g. key.created, key.topup, gate.allow, admin.auth_failed
    actor: str  # "admin", "system", "anonymous", an admin key's name, or a masked API key
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)
    id: int = 0
    request_id: str | None = None
    key_hash: str | None = None  # routing only; never written out

    def public(self) -> dict[str, Any]:
        """The event as subscribers outside the process see it (no key hash)."""
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "actor": self.actor,
            "timestamp": self.timestamp,
            "data": self.data,
        }
        if self.request_id is not None:
            out["requestId"] = self.request_id
        return out


ID_BLOCK = 1000


def id_blocks(reserve: Callable[[int], int], size: int = ID_BLOCK) -> Iterator[int]:
    """Event ids in blocks reserved from a store shared by several instances (`reserve(size)` returns the
    first id of a fresh block). While the store cannot be reached, numbering goes on past the last block:
    nothing is written to the shared audit log meanwhile, so nothing there can collide."""
    first = 1
    while True:
        try:
            first = reserve(size)
        except Exception:  # the store's own error (unreachable): never break the action publishing
            log.warning("event ids: could not reserve a block; numbering on locally")
        yield from range(first, first + size)
        first += size


Subscriber = Callable[[Event], None]
BatchSubscriber = Callable[[Sequence[Event]], None]


class EventHub:
    def __init__(self, first_id: int = 1, known: Mapping[str, str] | None = None) -> None:
        self._known = known  # the types it may carry (events/types.py); None: any (unit tests)
        self._inline: list[Subscriber] = [self._log]
        self._inline_by_type: dict[str, list[Subscriber]] = {}
        self._deferred: list[BatchSubscriber] = []
        self._pending: list[Event] = []
        self._scheduled: asyncio.Handle | None = None
        self._ids: Iterator[int] = itertools.count(first_id)
        self.published = 0
        self.delivered = 0

    def number_from(self, ids: Iterator[int]) -> None:
        """Take event ids from `ids` from now on (a fleet's blocks: `id_blocks`)."""
        self._ids = ids

    def seed(self, next_id: int) -> None:
        """Start numbering at `next_id` (the audit log's highest id + 1) unless already past it."""
        current = next(self._ids)
        self._ids = itertools.count(max(current, next_id))

    def subscribe(self, subscriber: Subscriber, types: Iterable[str] | None = None) -> None:
        """Inline, for every event or (cheaper on the tool-call path) only for the `types` named."""
        if types is None:
            self._inline.append(subscriber)
            return
        for type_ in types:
            self._inline_by_type.setdefault(type_, []).append(subscriber)

    def subscribe_batch(self, subscriber: BatchSubscriber) -> None:
        self._deferred.append(subscriber)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def publish(self, type_: str, actor: str, **data: Any) -> None:
        self.emit(type_, actor, data)

    def emit(
        self,
        type_: str,
        actor: str,
        data: dict[str, Any],
        *,
        request_id: str | None = None,
        key_hash: str | None = None,
        timestamp: float | None = None,
    ) -> Event:
        if self._known is not None and type_ not in self._known:
            raise ValueError(f"unknown event type {type_!r}: add it to events/types.py and docs/events.md")
        event = Event(
            type_, actor, data, time.time() if timestamp is None else timestamp, next(self._ids), request_id, key_hash
        )
        self.published += 1
        for subscriber in (*self._inline, *self._inline_by_type.get(type_, ())):
            try:
                subscriber(event)
            except Exception:  # a broken subscriber must not break the action that published
                log.exception("event subscriber failed on %s", type_)
        if self._deferred:
            self._pending.append(event)
            self._schedule()
        return event

    def flush(self) -> None:
        """Deliver every pending event to the deferred subscribers now."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        while self._pending:
            batch, self._pending = self._pending, []
            self._deliver(batch)

    def _drain_step(self) -> None:
        """The scheduled delivery: at most DRAIN_CHUNK events per pass of the loop, so the requests
        waiting behind it are held up for a short while at a time (the tail latency under load)."""
        self._scheduled = None
        batch, self._pending = self._pending[:DRAIN_CHUNK], self._pending[DRAIN_CHUNK:]
        self._deliver(batch)
        if self._pending and self._scheduled is None:
            self._scheduled = asyncio.get_running_loop().call_soon(self._drain_step)

    def _deliver(self, batch: list[Event]) -> None:
        for subscriber in self._deferred:
            try:
                subscriber(batch)
            except Exception:
                log.exception("deferred event subscriber %r failed on %d event(s)", subscriber, len(batch))
        self.delivered += len(batch)

    def _schedule(self) -> None:
        if self._scheduled is not None:
            if len(self._pending) >= MAX_PENDING:
                self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (start-up, CLI commands, unit tests): deliver at once
            self.flush()
            return
        self._scheduled = loop.call_later(DRAIN_DELAY_SECONDS, self._drain_step)

    @staticmethod
    def _log(event: Event) -> None:
        if event.type in GATE_EVENTS:
            return
        # One JSON object per line after the logger prefix: greppable, and parsed by the tests.
        log.info(
            "%s", orjson.dumps({"type": event.type, "actor": event.actor, "data": event.data}, default=str).decode()
        )
