"""Webhook delivery's queue: in-memory mirrors and scheduling over the store's durable `Outbox`.

An event moves outbox → batch → (deleted on delivery | dead letter), each move one store call, so
an accepted event is always in exactly one of them until it is delivered: nothing is lost by a crash
or a restart (a batch in flight when the process died is sent again: delivery is at least once).
Counts are mirrored in memory for stats and scheduling; bodies stay in the store until they are sent.
The body of a batch is built here (`payload.batch_body`) and handed to the store as bytes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paygate.store.outbox import Batch, DeadLetter, Outbox, OutboxRow
from paygate.webhooks.payload import USAGE, batch_body

if TYPE_CHECKING:
    from paygate.store.base import Store

__all__ = ["Batch", "DeadLetter", "Pending", "WebhookQueue", "event_types", "health_counts"]


@dataclass(slots=True)
class Pending:
    count: int = 0
    oldest: float = 0.0  # timestamp of the oldest queued event (0 when none)


def event_types(kinds_and_types: Sequence[tuple[str, str]]) -> list[str]:
    """Distinct types of a batch, per-call events named `usage` (the delivery log's convention)."""
    return list(dict.fromkeys(USAGE if kind == USAGE else type_ for kind, type_ in kinds_and_types))


class WebhookQueue:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.pending: dict[str, Pending] = {}
        self.batches: dict[int, Batch] = {}
        self.dead: dict[str, int] = defaultdict(int)

    def load(self, now: float) -> None:
        """Read the stored state. Batches waiting for a retry are due at once: a restart is a retry point
        (the receiver may well have been fixed while the gateway was down)."""
        state = self.outbox.state()
        self.pending = {dest: Pending(n, ts) for dest, (n, ts) in state.pending.items()}
        self.batches = {}
        for b in state.batches:
            b.next_at = min(b.next_at, now)
            self.batches[b.id] = b
        self.dead = defaultdict(int, state.dead)

    # outbox ----------------------------------------------------------------------------------
    def enqueue(self, rows: Sequence[OutboxRow]) -> None:
        """Queue `(dest, ts, kind, type, event JSON)` rows in one transaction."""
        if not rows:
            return
        self.outbox.enqueue(rows)
        for dest, ts, *_ in rows:
            p = self.pending.setdefault(dest, Pending())
            if p.count == 0:
                p.oldest = ts
            p.count += 1

    @property
    def buffered(self) -> int:
        return sum(p.count for p in self.pending.values())

    def take_batch(self, dest: str, size: int, now: float) -> Batch | None:
        """Move up to `size` of `dest`'s oldest queued events into a new batch (attempt 0, due now)."""
        events = self.outbox.oldest(dest, size)
        if not events:
            self.pending.pop(dest, None)
            return None
        types = event_types([(e.kind, e.type) for e in events])
        body = batch_body([(e.kind, e.event) for e in events])
        last_id = events[-1].id
        batch_id = self.outbox.form_batch(dest, last_id, body, len(events), types, now)
        batch = Batch(batch_id, dest, len(events), types, 0, now, now, body=body)
        self.batches[batch.id] = batch
        self._after_take(dest, len(events), last_id)
        return batch

    def _after_take(self, dest: str, taken: int, last_id: int) -> None:
        """Update the mirrored count without counting the table (a backlog of a dead receiver can be
        long): the oldest event left is the next one by id."""
        pending = self.pending.get(dest)
        left = (pending.count if pending else 0) - taken
        ts = self.outbox.next_ts(dest, last_id) if left > 0 else None
        if ts is None:
            self.pending.pop(dest, None)
        else:
            self.pending[dest] = Pending(left, ts)

    # batches ---------------------------------------------------------------------------------
    def body(self, batch: Batch) -> bytes:
        if batch.body is None:  # formed before a restart: read it back
            batch.body = self.outbox.batch_body(batch.id) or b""
        return batch.body

    def delivered(self, batch: Batch) -> None:
        self.outbox.delivered(batch.id)
        self.batches.pop(batch.id, None)

    def reschedule(self, batch: Batch, attempt: int, next_at: float, error: str) -> None:
        self.outbox.reschedule(batch.id, attempt, next_at, error)
        batch.attempt, batch.next_at, batch.last_error = attempt, next_at, error

    def dead_letter(self, batch: Batch, error: str, status: int, now: float) -> None:
        self.outbox.dead_letter(batch.id, batch.attempt + 1, error, status, now)
        self.batches.pop(batch.id, None)
        self.dead[batch.dest] += 1

    def head(self, dest: str) -> Batch | None:
        """The destination's oldest batch: batches go out one at a time, in order."""
        return min((b for b in self.batches.values() if b.dest == dest), key=lambda b: b.id, default=None)

    # dead letters ----------------------------------------------------------------------------
    @property
    def dead_count(self) -> int:
        return sum(self.dead.values())

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest first (the order `indices` of a replay refer to)."""
        return self.outbox.dead_letters()

    def clear_dead(self) -> int:
        removed = self.outbox.clear_dead()
        self.dead.clear()
        return removed

    def delete_dead(self, letters: Sequence[DeadLetter]) -> int:
        """Drop these dead letters (a purge by id or status, or their age: /admin/webhook-replay)."""
        removed = self.outbox.delete_dead([d.id for d in letters])
        for d in letters:
            self.dead[d.dest] -= 1
            if self.dead[d.dest] <= 0:
                del self.dead[d.dest]
        return removed

    def replay(self, letters: Sequence[DeadLetter], now: float) -> list[Batch]:
        """Move dead letters back to the batch table as fresh batches (attempt 0, due now), in one
        transaction."""
        ids = self.outbox.replay(letters, now)
        made = [
            Batch(i, d.dest, d.event_count, d.event_types, 0, now, d.created, body=d.body)
            for i, d in zip(ids, letters, strict=True)
        ]
        for b, d in zip(made, letters, strict=True):
            self.batches[b.id] = b
            self.dead[d.dest] -= 1
            if self.dead[d.dest] <= 0:
                del self.dead[d.dest]
        return made

    def dests(self) -> set[str]:
        """Every destination with something queued or in a batch."""
        return set(self.pending) | {b.dest for b in self.batches.values()}


def health_counts(store: Store) -> dict[str, int]:
    """`pendingRetries` and `deadLetterCount` straight from the store (for GET /health, which has no
    handle on the webhook service): batches that failed at least once and wait for a retry, and
    dead letters."""
    retries, dead = store.outbox.health()
    return {"pendingRetries": retries, "deadLetterCount": dead}
