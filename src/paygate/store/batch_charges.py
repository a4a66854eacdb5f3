"""All-or-nothing charges of several calls on one key, for the SQLite store (`tools/call_batch`).

A mixin of `SQLiteStore` (kept apart to keep that module small). Either every charge of the batch
is taken or none is: the total is checked against the balance once, then each call gets its own
ledger entry and usage row, in one transaction. Its journalled form, `charge_many_deferred`, is in
store/group_commit.py: the whole batch is one line of the charge journal, durable whole or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from paygate.core.records import ChargeResult, KeyRecord, UsageEvent
from paygate.store.rows import CHARGE_SQL, USAGE_SQL, usage_row

Charges = Sequence[tuple[int, UsageEvent]]  # (amount, the call's usage row) per call, in order


class _StoreCore(Protocol):
    _keys: dict[str, KeyRecord]

    @property
    def db(self) -> sqlite3.Connection: ...
    def flush(self) -> None: ...
    def _ledger(self, key_hash: str, delta: int, kind: str, balance: int, memo: str | None) -> None: ...
    def _guarded_update(self, sql: str, args: tuple[Any, ...], then: Callable[[int], None]) -> int | None: ...


class BatchCharges:
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
