"""Raw reads and writes of a SQLite state file's whole history, for `paygate-mcp migrate-store`.

Runs on the connection of an open `SQLiteStore` (so the file's lock is held and its charge journal replayed).
Reading streams each table by id through a cursor. Writing goes into one transaction, committed by `finish`:
a copy into SQLite that fails leaves the file as empty as it was.
"""

from __future__ import annotations

import heapq
import sqlite3
import time
from collections.abc import Iterator, Sequence

import orjson

from paygate.core.records import KeyRecord, LedgerEntry, UsageEvent
from paygate.store import charge_journal
from paygate.store.audit_log import AuditEntry
from paygate.store.history import Document, LedgerItem, OnceItem, RefundMark, UsageItem, successors
from paygate.store.outbox import Batch, DeadLetter, QueuedEvent
from paygate.store.rollups import CallRollups, RollupRow
from paygate.store.rows import KEY_COLUMNS, USAGE_SQL, record_values, row_to_record, row_to_usage, usage_row
from paygate.store.sqlite_outbox import dead_letter_of
from paygate.store.sqlite_rollups import SQLiteRollups

# every table a gateway writes to: a destination with a row in any of them is not empty
TABLES = (
    ("keys", "keys"),
    ("ledger", "ledger entries"),
    ("usage", "usage rows"),
    ("docs", "documents"),
    ("meta", "meta values"),
    ("audit", "audit entries"),
    ("webhook_outbox", "queued webhook events"),
    ("webhook_batches", "webhook batches"),
    ("webhook_dead_letters", "webhook dead letters"),
    ("call_rollup", "call rollup rows"),  # the finest level: every coarser one holds its sums
)


# this file's own bookkeeping (its charge journal's identity and position), never copied, nor a sign of use
LOCAL_META = (charge_journal.ID_META, charge_journal.SEQ_META)
NOT_LOCAL = f"name NOT IN ({', '.join(repr(n) for n in LOCAL_META)})"


def _ts(item: UsageItem) -> float:
    return item.ts if isinstance(item, RefundMark) else item.timestamp


def occupied(db: sqlite3.Connection) -> str | None:
    """None when no table holds a row (or the file has no tables yet); else what it holds."""
    found: list[str] = []
    for table, what in TABLES:
        try:
            where = f" WHERE {NOT_LOCAL}" if table == "meta" else ""
            n = int(db.execute(f"SELECT COUNT(*) FROM {table}{where}").fetchone()[0])
        except sqlite3.OperationalError:  # no such table: a new file
            continue
        if n:
            found.append(f"{n} {what}")
    return ", ".join(found) or None


class SQLiteHistory:
    """A `HistoryReader` and a `HistoryWriter` (store/history.py) on one SQLite connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._in_tx = False
        self._successors: dict[str, str] = {}
        self._masked: dict[str, str] = {}

    # reading -----------------------------------------------------------------------------------------------
    def keys(self) -> list[KeyRecord]:
        return [row_to_record(r) for r in self._rows("SELECT * FROM keys ORDER BY rowid")]

    def ledger(self) -> Iterator[LedgerItem]:
        for r in self.db.execute("SELECT id, ts, key_hash, delta, kind, balance_after, memo FROM ledger ORDER BY id"):
            yield int(r[0]), LedgerEntry(float(r[1]), str(r[2]), int(r[3]), str(r[4]), int(r[5]), r[6])

    def usage(self) -> Iterator[UsageItem]:
        """The usage rows and, between them by time, a mark for each refund (the Redis stream's `r`)."""
        calls: Iterator[UsageItem] = (row_to_usage(r) for r in self._rows("SELECT * FROM usage ORDER BY id"))
        refunds: Iterator[UsageItem] = (
            RefundMark(str(h), int(delta), float(ts))
            for h, delta, ts in self.db.execute(
                "SELECT key_hash, delta, ts FROM ledger WHERE kind = 'refund' ORDER BY id"
            )
        )
        return heapq.merge(calls, refunds, key=_ts)

    def documents(self) -> Iterator[Document]:
        for kind, doc_id, body in self.db.execute("SELECT kind, id, body FROM docs ORDER BY kind, id"):
            yield str(kind), str(doc_id), str(body)

    def meta(self) -> list[tuple[str, str]]:
        return [
            (str(n), str(v))
            for n, v in self.db.execute(f"SELECT name, value FROM meta WHERE {NOT_LOCAL} ORDER BY name")
        ]

    def audit(self) -> Iterator[AuditEntry]:
        for r in self.db.execute("SELECT id, ts, type, actor, data FROM audit ORDER BY id"):
            yield AuditEntry(int(r[0]), float(r[1]), str(r[2]), str(r[3]), orjson.loads(r[4]))

    def queued(self) -> Iterator[tuple[str, QueuedEvent]]:
        for r in self.db.execute("SELECT id, dest, ts, kind, type, event FROM webhook_outbox ORDER BY id"):
            yield str(r[1]), QueuedEvent(int(r[0]), float(r[2]), str(r[3]), str(r[4]), str(r[5]))

    def batches(self) -> Iterator[Batch]:
        sql = (
            "SELECT id, dest, event_count, event_types, attempt, next_at, created, last_error, body "
            "FROM webhook_batches ORDER BY id"
        )
        for r in self.db.execute(sql):
            yield Batch(
                int(r[0]),
                str(r[1]),
                int(r[2]),
                orjson.loads(r[3]),
                int(r[4]),
                float(r[5]),
                float(r[6]),
                r[7],
                str(r[8]).encode(),
            )

    def dead_letters(self) -> Iterator[DeadLetter]:
        sql = (
            "SELECT id, dest, body, event_count, event_types, attempts, created, failed_at, last_error, last_status "
            "FROM webhook_dead_letters ORDER BY id"
        )
        for r in self.db.execute(sql):
            yield dead_letter_of(r)

    def once_moves(self) -> Iterator[OnceItem]:
        for r in self.db.execute("SELECT once_id, key_hash, requested, moved FROM once_moves ORDER BY once_id"):
            yield str(r[0]), str(r[1]), int(r[2]), int(r[3])

    def rollups(self, moved: dict[str, str]) -> CallRollups:
        """The file's own rollups (a rotation moved the old key's rows already: `moved` is not needed)."""
        return SQLiteRollups(lambda: self.db)

    def _rows(self, sql: str) -> Iterator[sqlite3.Row]:
        cursor = self.db.cursor()
        cursor.row_factory = sqlite3.Row
        yield from cursor.execute(sql)

    # writing -----------------------------------------------------------------------------------------------
    def empty(self) -> str | None:
        return occupied(self.db)

    def _begin(self) -> None:
        if not self._in_tx:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        self._begin()
        self.db.executemany(sql, rows)

    def write_keys(self, records: Sequence[KeyRecord]) -> None:
        placeholders = ",".join("?" * len(KEY_COLUMNS))
        self._write(
            f"INSERT INTO keys ({','.join(KEY_COLUMNS)}) VALUES ({placeholders})", [record_values(r) for r in records]
        )
        self._masked.update((r.key_hash, r.masked) for r in records)
        self._successors = successors([*records])  # every key arrives in one call (they are all in memory)

    def write_ledger(self, items: Sequence[LedgerItem]) -> None:
        self._write(
            "INSERT INTO ledger (id, ts, key_hash, delta, kind, balance_after, memo) VALUES (?,?,?,?,?,?,?)",
            [(seq, e.timestamp, e.key_hash, e.delta, e.kind, e.balance_after, e.memo) for seq, e in items],
        )

    def write_usage(self, items: Sequence[UsageItem]) -> None:
        """Calls only (a refund is its ledger entry here); a rotated key's rows follow it to its successor,
        as SQLite's rotation does (store/key_moves.py)."""
        rows = []
        for item in items:
            if isinstance(item, UsageEvent):
                now = self._successors.get(item.key_hash)
                if now is not None:
                    item.key_hash, item.key_masked = now, self._masked.get(now, item.key_masked)
                rows.append(usage_row(item))
        self._write(USAGE_SQL, rows)

    def write_documents(self, docs: Sequence[Document]) -> None:
        self._write("INSERT INTO docs (kind, id, body) VALUES (?, ?, ?)", list(docs))

    def write_meta(self, values: Sequence[tuple[str, str]]) -> None:
        self._write("INSERT INTO meta (name, value) VALUES (?, ?)", [v for v in values if v[0] not in LOCAL_META])

    def write_audit(self, entries: Sequence[AuditEntry]) -> None:
        self._write(
            "INSERT INTO audit (id, ts, type, actor, data) VALUES (?, ?, ?, ?, ?)",
            [(e.id, e.timestamp, e.type, e.actor, orjson.dumps(e.data, default=str).decode()) for e in entries],
        )

    def write_queued(self, events: Sequence[tuple[str, QueuedEvent]]) -> None:
        self._write(
            "INSERT INTO webhook_outbox (id, dest, ts, kind, type, event) VALUES (?, ?, ?, ?, ?, ?)",
            [(e.id, dest, e.ts, e.kind, e.type, e.event) for dest, e in events],
        )

    def write_batches(self, batches: Sequence[Batch]) -> None:
        self._write(
            "INSERT INTO webhook_batches (id, dest, body, event_count, event_types, attempt, next_at, created, "
            "last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    b.id,
                    b.dest,
                    (b.body or b"").decode(),
                    b.event_count,
                    orjson.dumps(b.event_types).decode(),
                    b.attempt,
                    b.next_at,
                    b.created,
                    b.last_error,
                )
                for b in batches
            ],
        )

    def write_once_moves(self, items: Sequence[OnceItem]) -> None:
        now = time.time()
        self._write(
            "INSERT INTO once_moves (once_id, key_hash, requested, moved, ts) VALUES (?, ?, ?, ?, ?)",
            [(*item, now) for item in items],
        )

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        self._write(
            "INSERT INTO webhook_dead_letters (id, dest, body, event_count, event_types, attempts, created, "
            "failed_at, last_error, last_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d.id,
                    d.dest,
                    d.body.decode(),
                    d.event_count,
                    orjson.dumps(d.event_types).decode(),
                    d.attempts,
                    d.created,
                    d.failed_at,
                    d.last_error,
                    d.last_status,
                )
                for d in letters
            ],
        )

    def write_rollups(self, rows: Sequence[RollupRow]) -> None:
        """Into every level, in the copy's one transaction."""
        self._begin()
        SQLiteRollups(lambda: self.db).add_sums(rows)

    def finish(self) -> None:
        if self._in_tx:
            self.db.execute("COMMIT")
            self._in_tx = False

    def abort(self) -> str:
        if self._in_tx:
            self.db.execute("ROLLBACK")
            self._in_tx = False
        return "nothing was written (the transaction was rolled back)"
