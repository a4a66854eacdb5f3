"""What `paygate-mcp migrate-store` moves between the two stores, side-neutral: each store's raw reader yields
these, each store's raw writer takes them (store/history_sqlite.py, store/redis_backend/history.py).

Readers stream: the ledger, the usage log and the audit log are read a chunk at a time, never whole.
Ids travel with what has them (ledger entry numbers, audit ids, outbox ids), so order and identity survive.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import NamedTuple, Protocol, TypeVar

from paygate.core.records import KeyRecord, LedgerEntry, UsageEvent
from paygate.store.audit_log import AuditEntry
from paygate.store.outbox import Batch, DeadLetter, QueuedEvent
from paygate.store.rollups import CallRollups, RollupRow

T = TypeVar("T")
CHUNK = 1000
MIGRATED_OWNER = "migrated"  # the Redis outbox partition a copy lands in: no instance is alive under it


class RefundMark(NamedTuple):
    """A refund of a call, as the Redis usage stream keeps it (so its usage sums take the call back out);
    on SQLite it is the `refund` ledger entry itself."""

    key_hash: str
    credits: int
    ts: float


UsageItem = UsageEvent | RefundMark  # one entry of the usage log, oldest first
LedgerItem = tuple[int, LedgerEntry]  # (entry number, entry): the number orders a key's history
Document = tuple[str, str, str]  # (kind, id, body JSON text)
OnceItem = tuple[str, str, int, int]  # a `move_once` record: (once id, key hash or "", requested, moved)


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def successors(records: Iterable[KeyRecord]) -> dict[str, str]:
    """Old key hash -> the key that holds it now, from the retired keys' `extra["rotatedTo"]` (a rotation of a
    rotated key followed to its end)."""
    step = {r.key_hash: str(r.extra["rotatedTo"]) for r in records if r.extra.get("rotatedTo")}
    final: dict[str, str] = {}
    for old, h in step.items():
        seen = {old}
        while h in step and h not in seen:
            seen.add(h)
            h = step[h]
        final[old] = h
    return final


class HistoryReader(Protocol):
    def keys(self) -> list[KeyRecord]: ...
    def ledger(self) -> Iterator[LedgerItem]: ...  # every key's entries, any order
    def usage(self) -> Iterator[UsageItem]: ...  # oldest first
    def documents(self) -> Iterator[Document]: ...
    def meta(self) -> list[tuple[str, str]]: ...
    def audit(self) -> Iterator[AuditEntry]: ...  # by id
    def queued(self) -> Iterator[tuple[str, QueuedEvent]]: ...  # (destination, event), by id
    def batches(self) -> Iterator[Batch]: ...  # with their bodies, by id
    def dead_letters(self) -> Iterator[DeadLetter]: ...  # by id
    def once_moves(self) -> Iterator[OnceItem]: ...  # what `Money.move_once` recorded (store/once.py)
    # the call rollups, read through the store's own query; `moved`: old key hash -> its successor
    def rollups(self, moved: dict[str, str]) -> CallRollups: ...


class HistoryWriter(Protocol):
    def empty(self) -> str | None: ...  # None, or what is already there (the copy is refused)
    def write_keys(self, records: Sequence[KeyRecord]) -> None: ...  # every key, in one call
    def write_ledger(self, items: Sequence[LedgerItem]) -> None: ...
    def write_usage(self, items: Sequence[UsageItem]) -> None: ...
    def write_documents(self, docs: Sequence[Document]) -> None: ...
    def write_meta(self, values: Sequence[tuple[str, str]]) -> None: ...
    def write_audit(self, entries: Sequence[AuditEntry]) -> None: ...
    def write_queued(self, events: Sequence[tuple[str, QueuedEvent]]) -> None: ...
    def write_batches(self, batches: Sequence[Batch]) -> None: ...
    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None: ...
    def write_once_moves(self, items: Sequence[OnceItem]) -> None: ...
    def write_rollups(self, rows: Sequence[RollupRow]) -> None: ...  # base sums, added to every level
    def finish(self) -> None: ...  # counters, then commit
    def abort(self) -> str: ...  # undo what can be; says what is left
