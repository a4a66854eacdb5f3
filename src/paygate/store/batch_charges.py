"""All-or-nothing charges of several calls on one key, for the SQLite store (`tools/call_batch`).

A mixin of `SQLiteStore` (kept apart to keep that module small). Either every charge of the batch
is taken or none is: the total is checked against the balance once, then each call gets its own
ledger entry and usage row, in one transaction. `charge_many_deferred` is the group-committed form:
the whole batch joins the pending group commit (see `sqlite.py`) as consecutive entries, so the one
transaction that writes them writes all of them or, on failure, undoes all of them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from paygate.core.records import ChargeResult, KeyRecord, UsageEvent
from paygate.store.rows import CHARGE_SQL, USAGE_SQL, usage_row

Charges = Sequence[tuple[int, UsageEvent]]  # (amount, the call's usage row) per call, in order


@dataclass(slots=True)
class PendingCharge:
    """A charge applied in memory and waiting for the group commit."""

    record: KeyRecord
    amount: int
    balance: int
    event: UsageEvent
    done: asyncio.Future[None]


class _StoreCore(Protocol):
    _keys: dict[str, KeyRecord]
    _batch: list[PendingCharge]
    _flush_handle: asyncio.Handle | None

    @property
    def db(self) -> sqlite3.Connection: ...
    def flush(self) -> None: ...
    def _ledger(self, key_hash: str, delta: int, kind: str, balance: int, memo: str | None) -> None: ...
    def _guarded_update(self, sql: str, args: tuple[Any, ...], then: Callable[[int], None]) -> int | None: ...


class BatchCharges:
    _flush_handle: asyncio.Handle | None  # SQLiteStore's: the group commit scheduled for this pass of the loop

    def charge_many(self: _StoreCore, key_hash: str, charges: Charges) -> ChargeResult:
        """Deduct every amount of `charges` if the balance covers their sum, else nothing; each call gets
        its ledger entry and usage row. One transaction."""
        self.flush()
        record = self._keys.get(key_hash)
        if record is None:
            return ChargeResult(False, 0)
        if not charges:
            return ChargeResult(True, record.credits)
        total = sum(amount for amount, _ in charges)
        last_used = charges[-1][1].timestamp

        def record_calls(balance: int) -> None:
            running = balance + total
            for amount, event in charges:
                running -= amount
                if amount:
                    self._ledger(key_hash, -amount, "charge", running, event.tool)
                self.db.execute(USAGE_SQL, usage_row(event))

        balance = self._guarded_update(CHARGE_SQL, (total, len(charges), last_used, key_hash), record_calls)
        if balance is None:
            return ChargeResult(False, record.credits)
        record.credits = balance
        record.total_spent += total
        record.total_calls += len(charges)
        record.last_used_at = last_used
        return ChargeResult(True, balance)

    def charge_many_deferred(
        self: _StoreCore,
        key_hash: str,
        charges: Charges,
    ) -> tuple[ChargeResult, asyncio.Future[None] | None]:
        """`charge_many`, group-committed: decided and applied in memory now, durable once the one future
        (shared by the batch's calls) resolves. Outside an event loop this is plain `charge_many`."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return BatchCharges.charge_many(self, key_hash, charges), None
        record = self._keys.get(key_hash)
        if record is None:
            return ChargeResult(False, 0), None
        if record.credits < sum(amount for amount, _ in charges):
            return ChargeResult(False, record.credits), None
        done: asyncio.Future[None] = loop.create_future()
        if not charges:
            done.set_result(None)
        for amount, event in charges:
            record.credits -= amount
            record.total_spent += amount
            record.total_calls += 1
            record.last_used_at = event.timestamp
            self._batch.append(PendingCharge(record, amount, record.credits, event, done))
        if self._flush_handle is None and self._batch:
            self._flush_handle = loop.call_soon(self.flush)
        return ChargeResult(True, record.credits), done
