"""The durable side of webhook delivery: three SQLite tables (migration 4) on the store's connection.

- `webhook_outbox`: accepted events not yet in a batch, one row per (event, destination);
- `webhook_batches`: batches being delivered or waiting for a retry, with the exact body to send;
- `webhook_dead_letters`: batches that ran out of retries (or whose destination was removed).

An event moves outbox → batch → (deleted on delivery | dead letter), each move one transaction, so
an accepted event is always in exactly one of them until it is delivered: nothing is lost by a crash
or a restart (a batch in flight when the process died is sent again: delivery is at least once).
Counts are mirrored in memory for stats and scheduling; bodies stay on disk until they are sent.
Written from the event loop only (explicit BEGIN IMMEDIATE … COMMIT), like the audit log.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from paygate.webhooks.payload import USAGE, batch_body


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


@dataclass(slots=True)
class Pending:
    count: int = 0
    oldest: float = 0.0  # timestamp of the oldest queued event (0 when none)


def event_types(kinds_and_types: Sequence[tuple[str, str]]) -> list[str]:
    """Distinct types of a batch, per-call events named `usage` (the delivery log's convention)."""
    return list(dict.fromkeys(USAGE if kind == USAGE else type_ for kind, type_ in kinds_and_types))


class WebhookQueue:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.pending: dict[str, Pending] = {}
        self.batches: dict[int, Batch] = {}
        self.dead: dict[str, int] = defaultdict(int)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def load(self, now: float) -> None:
        """Read the tables. Batches waiting for a retry are due at once: a restart is a retry point
        (the receiver may well have been fixed while the gateway was down)."""
        self.pending = {str(d): Pending(int(n), float(ts)) for d, n, ts in self.db.execute(
            "SELECT dest, COUNT(*), MIN(ts) FROM webhook_outbox GROUP BY dest")}
        self.batches = {}
        for row in self.db.execute("SELECT id, dest, event_count, event_types, attempt, next_at, created, "
                                   "last_error FROM webhook_batches ORDER BY id"):
            self.batches[int(row[0])] = Batch(int(row[0]), str(row[1]), int(row[2]), orjson.loads(row[3]),
                                              int(row[4]), min(float(row[5]), now), float(row[6]), row[7])
        self.dead = defaultdict(int, {str(d): int(n) for d, n in self.db.execute(
            "SELECT dest, COUNT(*) FROM webhook_dead_letters GROUP BY dest")})

    # outbox ----------------------------------------------------------------------------------
    def enqueue(self, rows: Sequence[tuple[str, float, str, str, str]]) -> None:
        """Queue `(dest, ts, kind, type, event JSON)` rows in one transaction."""
        if not rows:
            return
        with self._tx() as db:
            db.executemany("INSERT INTO webhook_outbox (dest, ts, kind, type, event) VALUES (?, ?, ?, ?, ?)", rows)
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
        rows = self.db.execute("SELECT id, kind, type, event FROM webhook_outbox WHERE dest = ? ORDER BY id LIMIT ?",
                               (dest, size)).fetchall()
        if not rows:
            self.pending.pop(dest, None)
            return None
        types = event_types([(str(r[1]), str(r[2])) for r in rows])
        body = batch_body([(str(r[1]), str(r[3])) for r in rows])
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO webhook_batches (dest, body, event_count, event_types, attempt, next_at, created) "
                "VALUES (?, ?, ?, ?, 0, ?, ?)",
                (dest, body.decode(), len(rows), orjson.dumps(types).decode(), now, now))
            db.execute("DELETE FROM webhook_outbox WHERE dest = ? AND id <= ?", (dest, int(rows[-1][0])))
            batch = Batch(int(cursor.lastrowid or 0), dest, len(rows), types, 0, now, now, body=body)
        self.batches[batch.id] = batch
        self._after_take(dest, len(rows), int(rows[-1][0]))
        return batch

    def _after_take(self, dest: str, taken: int, last_id: int) -> None:
        """Update the mirrored count without counting the table (a backlog of a dead receiver can be
        long): the oldest event left is the next one by id, an index seek."""
        pending = self.pending.get(dest)
        left = (pending.count if pending else 0) - taken
        row = self.db.execute("SELECT ts FROM webhook_outbox WHERE dest = ? AND id > ? ORDER BY id LIMIT 1",
                              (dest, last_id)).fetchone() if left > 0 else None
        if row is None:
            self.pending.pop(dest, None)
        else:
            self.pending[dest] = Pending(left, float(row[0]))

    # batches ---------------------------------------------------------------------------------
    def body(self, batch: Batch) -> bytes:
        if batch.body is None:  # formed before a restart: read it back
            row = self.db.execute("SELECT body FROM webhook_batches WHERE id = ?", (batch.id,)).fetchone()
            batch.body = str(row[0]).encode() if row else b""
        return batch.body

    def delivered(self, batch: Batch) -> None:
        self.db.execute("DELETE FROM webhook_batches WHERE id = ?", (batch.id,))  # one statement: atomic alone
        self.batches.pop(batch.id, None)

    def reschedule(self, batch: Batch, attempt: int, next_at: float, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE webhook_batches SET attempt = ?, next_at = ?, last_error = ? WHERE id = ?",
                       (attempt, next_at, error, batch.id))
        batch.attempt, batch.next_at, batch.last_error = attempt, next_at, error

    def dead_letter(self, batch: Batch, error: str, status: int, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO webhook_dead_letters (dest, body, event_count, event_types, attempts, created, "
                       "failed_at, last_error, last_status) SELECT dest, body, event_count, event_types, ?, created, "
                       "?, ?, ? FROM webhook_batches WHERE id = ?", (batch.attempt + 1, now, error, status, batch.id))
            db.execute("DELETE FROM webhook_batches WHERE id = ?", (batch.id,))
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
        return [DeadLetter(int(r[0]), str(r[1]), str(r[2]).encode(), int(r[3]), orjson.loads(r[4]), int(r[5]),
                           float(r[6]), float(r[7]), r[8], int(r[9]))
                for r in self.db.execute("SELECT id, dest, body, event_count, event_types, attempts, created, "
                                         "failed_at, last_error, last_status FROM webhook_dead_letters ORDER BY id")]

    def clear_dead(self) -> int:
        with self._tx() as db:
            removed = db.execute("DELETE FROM webhook_dead_letters").rowcount
        self.dead.clear()
        return int(removed)

    def replay(self, letters: Sequence[DeadLetter], now: float) -> list[Batch]:
        """Move dead letters back to the batch table as fresh batches (attempt 0, due now), in one
        transaction."""
        made: list[Batch] = []
        with self._tx() as db:
            for d in letters:
                cursor = db.execute(
                    "INSERT INTO webhook_batches (dest, body, event_count, event_types, attempt, next_at, created) "
                    "VALUES (?, ?, ?, ?, 0, ?, ?)",
                    (d.dest, d.body.decode(), d.event_count, orjson.dumps(d.event_types).decode(), now, d.created))
                db.execute("DELETE FROM webhook_dead_letters WHERE id = ?", (d.id,))
                made.append(Batch(int(cursor.lastrowid or 0), d.dest, d.event_count, d.event_types, 0, now, d.created,
                                  body=d.body))
        for b, d in zip(made, letters, strict=True):
            self.batches[b.id] = b
            self.dead[d.dest] -= 1
            if self.dead[d.dest] <= 0:
                del self.dead[d.dest]
        return made

    def dests(self) -> set[str]:
        """Every destination with something queued or in a batch."""
        return set(self.pending) | {b.dest for b in self.batches.values()}


def health_counts(store: Any) -> dict[str, int]:
    """`pendingRetries` and `deadLetterCount` straight from the tables (for GET /health, which has no
    handle on the webhook service): batches that failed at least once and wait for a retry, and
    dead letters."""
    db = getattr(store, "db", None)
    if not isinstance(db, sqlite3.Connection):
        return {"pendingRetries": 0, "deadLetterCount": 0}
    retries = db.execute("SELECT COUNT(*) FROM webhook_batches WHERE attempt > 0").fetchone()[0]
    dead = db.execute("SELECT COUNT(*) FROM webhook_dead_letters").fetchone()[0]
    return {"pendingRetries": int(retries), "deadLetterCount": int(dead)}
