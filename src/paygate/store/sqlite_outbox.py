"""The webhook outbox on SQLite: three tables (migration 4) on the store's connection.

- `webhook_outbox`: accepted events not yet in a batch, one row per (event, destination);
- `webhook_batches`: batches being delivered or waiting for a retry, with the exact body to send;
- `webhook_dead_letters`: batches that ran out of retries (or whose destination was removed).

Written from the event loop only (explicit BEGIN IMMEDIATE … COMMIT), like the rest of the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from paygate.store.outbox import Batch, DeadLetter, OutboxRow, OutboxState, QueuedEvent

_NEW_BATCH = (
    "INSERT INTO webhook_batches (dest, body, event_count, event_types, attempt, next_at, created) "
    "VALUES (?, ?, ?, ?, 0, ?, ?)"
)


def dead_letter_of(r: Sequence[Any]) -> DeadLetter:
    """A `webhook_dead_letters` row (id, dest, body, event_count, event_types, attempts, created, failed_at,
    last_error, last_status) as a DeadLetter."""
    return DeadLetter(
        int(r[0]),
        str(r[1]),
        str(r[2]).encode(),
        int(r[3]),
        orjson.loads(r[4]),
        int(r[5]),
        float(r[6]),
        float(r[7]),
        r[8],
        int(r[9]),
    )


class SQLiteOutbox:
    """Implements `paygate.store.outbox.Outbox`; `connection()` is the store's open connection."""

    def __init__(self, connection: Callable[[], sqlite3.Connection]) -> None:
        self._connection = connection

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def state(self) -> OutboxState:
        db = self._connection()
        pending = {
            str(d): (int(n), float(ts))
            for d, n, ts in db.execute("SELECT dest, COUNT(*), MIN(ts) FROM webhook_outbox GROUP BY dest")
        }
        batches = [
            Batch(int(r[0]), str(r[1]), int(r[2]), orjson.loads(r[3]), int(r[4]), float(r[5]), float(r[6]), r[7])
            for r in db.execute(
                "SELECT id, dest, event_count, event_types, attempt, next_at, created, "
                "last_error FROM webhook_batches ORDER BY id"
            )
        ]
        dead = {str(d): int(n) for d, n in db.execute("SELECT dest, COUNT(*) FROM webhook_dead_letters GROUP BY dest")}
        return OutboxState(pending, batches, dead)

    def enqueue(self, rows: Sequence[OutboxRow]) -> None:
        if not rows:
            return
        with self._tx() as db:
            db.executemany("INSERT INTO webhook_outbox (dest, ts, kind, type, event) VALUES (?, ?, ?, ?, ?)", rows)

    def oldest(self, dest: str, limit: int) -> list[QueuedEvent]:
        rows = self._connection().execute(
            "SELECT id, ts, kind, type, event FROM webhook_outbox WHERE dest = ? ORDER BY id LIMIT ?", (dest, limit)
        )
        return [QueuedEvent(int(r[0]), float(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]

    def next_ts(self, dest: str, after_id: int) -> float | None:
        """An index seek, not a count: a dead receiver's backlog can be long."""
        row = (
            self._connection()
            .execute("SELECT ts FROM webhook_outbox WHERE dest = ? AND id > ? ORDER BY id LIMIT 1", (dest, after_id))
            .fetchone()
        )
        return None if row is None else float(row[0])

    def form_batch(
        self, dest: str, through_id: int, body: bytes, event_count: int, event_types: list[str], now: float
    ) -> int:
        with self._tx() as db:
            cursor = db.execute(
                _NEW_BATCH, (dest, body.decode(), event_count, orjson.dumps(event_types).decode(), now, now)
            )
            db.execute("DELETE FROM webhook_outbox WHERE dest = ? AND id <= ?", (dest, through_id))
        return int(cursor.lastrowid or 0)

    def batch_body(self, batch_id: int) -> bytes | None:
        row = self._connection().execute("SELECT body FROM webhook_batches WHERE id = ?", (batch_id,)).fetchone()
        return None if row is None else str(row[0]).encode()

    def delivered(self, batch_id: int) -> None:
        # one statement: atomic alone
        self._connection().execute("DELETE FROM webhook_batches WHERE id = ?", (batch_id,))

    def reschedule(self, batch_id: int, attempt: int, next_at: float, error: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE webhook_batches SET attempt = ?, next_at = ?, last_error = ? WHERE id = ?",
                (attempt, next_at, error, batch_id),
            )

    def dead_letter(self, batch_id: int, attempts: int, error: str, status: int, now: float) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO webhook_dead_letters (dest, body, event_count, event_types, attempts, created, "
                "failed_at, last_error, last_status) SELECT dest, body, event_count, event_types, ?, created, "
                "?, ?, ? FROM webhook_batches WHERE id = ?",
                (attempts, now, error, status, batch_id),
            )
            db.execute("DELETE FROM webhook_batches WHERE id = ?", (batch_id,))

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest first (the order `indices` of a replay refer to)."""
        return [
            dead_letter_of(r)
            for r in self._connection().execute(
                "SELECT id, dest, body, event_count, event_types, attempts, created, failed_at, last_error, "
                "last_status FROM webhook_dead_letters ORDER BY id"
            )
        ]

    def clear_dead(self) -> int:
        with self._tx() as db:
            return int(db.execute("DELETE FROM webhook_dead_letters").rowcount)

    def delete_dead(self, ids: Sequence[int]) -> int:
        with self._tx() as db:
            return sum(db.execute("DELETE FROM webhook_dead_letters WHERE id = ?", (int(i),)).rowcount for i in ids)

    def replay(self, letters: Sequence[DeadLetter], now: float) -> list[int]:
        ids: list[int] = []
        with self._tx() as db:
            for d in letters:
                cursor = db.execute(
                    _NEW_BATCH,
                    (d.dest, d.body.decode(), d.event_count, orjson.dumps(d.event_types).decode(), now, d.created),
                )
                db.execute("DELETE FROM webhook_dead_letters WHERE id = ?", (d.id,))
                ids.append(int(cursor.lastrowid or 0))
        return ids

    def health(self) -> tuple[int, int]:
        db = self._connection()
        retries = db.execute("SELECT COUNT(*) FROM webhook_batches WHERE attempt > 0").fetchone()[0]
        dead = db.execute("SELECT COUNT(*) FROM webhook_dead_letters").fetchone()[0]
        return int(retries), int(dead)
