"""The webhook outbox as the store offers it: the `Outbox` role and the values it speaks in.

An accepted event moves outbox → batch → (deleted on delivery | dead letter), each move atomic, so it
is always in exactly one place until it is delivered: nothing is lost by a crash or a restart (a batch
in flight when the process died is sent again: delivery is at least once).
The store keeps bytes and counts only: what a batch's body looks like is the webhook service's business
(it builds the body and hands it over), so the store never imports services.
Every store provides one as `store.outbox`; the SQLite one is `store/sqlite_outbox.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

# (dest, ts, kind, type, event JSON): one accepted event for one destination
OutboxRow = tuple[str, float, str, str, str]


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An event in the outbox, not yet in a batch. `kind` says which array of the payload it goes in."""

    id: int
    ts: float
    kind: str
    type: str
    event: str


@dataclass(slots=True)
class Batch:
    id: int
    dest: str
    event_count: int
    event_types: list[str]
    attempt: int
    next_at: float
    created: float
    last_error: str | None = None
    body: bytes | None = None  # the stored body, kept in memory by the process that formed the batch


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    dest: str
    body: bytes
    event_count: int
    event_types: list[str]
    attempts: int
    created: float
    failed_at: float
    last_error: str | None
    last_status: int


@dataclass(frozen=True, slots=True)
class OutboxState:
    """What a (re)start reads: per destination (queued count, oldest queued ts), every batch without its
    body, oldest first, and dead letters per destination."""

    pending: dict[str, tuple[int, float]] = field(default_factory=dict)
    batches: list[Batch] = field(default_factory=list)
    dead: dict[str, int] = field(default_factory=dict)


class Outbox(Protocol):
    """Durable webhook delivery state. Each method is one atomic move."""

    def state(self) -> OutboxState: ...
    def enqueue(self, rows: Sequence[OutboxRow]) -> None: ...  # all or none
    def oldest(self, dest: str, limit: int) -> list[QueuedEvent]: ...  # `dest`'s oldest queued events, in order
    def next_ts(self, dest: str, after_id: int) -> float | None: ...  # ts of the first queued event after an id
    # a new batch (attempt 0, due `now`) of `body`, and `dest`'s queued events with id <= `through_id` gone
    def form_batch(
        self, dest: str, through_id: int, body: bytes, event_count: int, event_types: list[str], now: float
    ) -> int: ...
    def batch_body(self, batch_id: int) -> bytes | None: ...
    def delivered(self, batch_id: int) -> None: ...
    def reschedule(self, batch_id: int, attempt: int, next_at: float, error: str) -> None: ...
    # the batch becomes a dead letter after `attempts` attempts
    def dead_letter(self, batch_id: int, attempts: int, error: str, status: int, now: float) -> None: ...
    def dead_letters(self) -> list[DeadLetter]: ...  # oldest first
    def clear_dead(self) -> int: ...
    def delete_dead(self, ids: Sequence[int]) -> int: ...  # those dead letters gone: how many there were
    # dead letters back as fresh batches (attempt 0, due `now`), in one move: the new batch ids, in order
    def replay(self, letters: Sequence[DeadLetter], now: float) -> list[int]: ...
    def health(self) -> tuple[int, int]: ...  # (batches waiting for a retry, dead letters)
