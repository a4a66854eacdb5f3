"""Single-key credit adjustments for the SQLite store: reservations, refunds, topups, surcharges, and
moves applied once per outside id (`move_once`).

A mixin of `SQLiteStore` (kept apart to keep that module small). Each is one guarded UPDATE with its
ledger entry in the same transaction; the in-memory record changes only after it committed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol

from paygate.core.records import ChargeResult, KeyRecord
from paygate.store.once import OnceMove


class _StoreCore(Protocol):
    _keys: dict[str, KeyRecord]

    @property
    def db(self) -> sqlite3.Connection: ...
    def flush(self) -> None: ...
    def adjust(
        self, key_hash: str, delta: int, kind: str, memo: str, spent_delta: int = 0, calls_delta: int = 0
    ) -> ChargeResult: ...
    def _ledger(self, key_hash: str, delta: int, kind: str, balance: int, memo: str | None) -> None: ...
    def _guarded_update(self, sql: str, args: tuple[Any, ...], then: Callable[[int], None]) -> int | None: ...


class Adjustments:
    def adjust(
        self: _StoreCore, key_hash: str, delta: int, kind: str, memo: str, spent_delta: int = 0, calls_delta: int = 0
    ) -> ChargeResult:
        """Move `delta` credits (never below zero) with a ledger entry of `kind`, atomically; totalSpent
        and totalCalls move by their deltas (totalCalls never below zero)."""
        self.flush()
        record = self._keys.get(key_hash)
        if record is None:
            return ChargeResult(False, 0)
        balance = self._guarded_update(
            "UPDATE keys SET credits = credits + ?1, total_spent = total_spent + ?2, "
            "total_calls = MAX(total_calls + ?4, 0) WHERE key_hash = ?3 AND credits + ?1 >= 0 RETURNING credits",
            (delta, spent_delta, key_hash, calls_delta),
            lambda after: self._ledger(key_hash, delta, kind, after, memo),
        )
        if balance is None:
            return ChargeResult(False, record.credits)
        record.credits = balance
        record.total_spent += spent_delta
        record.total_calls = max(record.total_calls + calls_delta, 0)
        return ChargeResult(True, balance)

    def refund(self: _StoreCore, key_hash: str, amount: int, memo: str) -> ChargeResult:
        """Give back a failed call's charge: its credits, and its place in totalSpent and totalCalls."""
        return self.adjust(key_hash, amount, "refund", memo, -amount, -1)

    def topup(self: _StoreCore, key_hash: str, amount: int, memo: str) -> ChargeResult:
        return self.adjust(key_hash, amount, "topup", memo, 0)

    def topup_below(self: _StoreCore, key_hash: str, amount: int, threshold: int, memo: str) -> ChargeResult:
        """A topup only while the balance is below `threshold` (one process: the check is exact)."""
        record = self._keys.get(key_hash)
        if record is None:
            return ChargeResult(False, 0)
        if record.credits >= threshold:
            return ChargeResult(False, record.credits)
        return self.adjust(key_hash, amount, "topup", memo, 0)

    def move_once(self: _StoreCore, key_hash: str, delta: int, kind: str, memo: str, once_id: str) -> OnceMove:
        """`delta` credits (a take-back: at most the balance) with a ledger entry of `kind`, and `once_id`
        recorded, in one transaction; nothing when `once_id` is already recorded."""
        self.flush()
        record = self._keys.get(key_hash)
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            seen = db.execute("SELECT requested, moved FROM once_moves WHERE once_id = ?", (once_id,)).fetchone()
            if seen is not None or record is None:
                db.execute("ROLLBACK")
                if seen is not None:
                    return OnceMove("duplicate", int(seen[0]), int(seen[1]), record.credits if record else 0)
                return OnceMove("no_key", delta, 0, 0)
            balance = int(db.execute("SELECT credits FROM keys WHERE key_hash = ?", (key_hash,)).fetchone()[0])
            moved = max(delta, -balance)
            if moved:
                row = db.execute(
                    "UPDATE keys SET credits = credits + ? WHERE key_hash = ? RETURNING credits", (moved, key_hash)
                ).fetchone()
                balance = int(row[0])
                self._ledger(key_hash, moved, kind, balance, memo)
            db.execute(
                "INSERT INTO once_moves (once_id, key_hash, requested, moved, ts) VALUES (?, ?, ?, ?, ?)",
                (once_id, key_hash, delta, moved, time.time()),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        record.credits = balance
        return OnceMove("applied", delta, moved, balance)

    def charge_up_to(self: _StoreCore, key_hash: str, amount: int, memo: str) -> tuple[int, int]:
        """Deduct as much of `amount` as the balance allows; returns (charged, balance)."""
        self.flush()
        return surcharge_up_to(self._keys.get(key_hash), amount, memo, self.adjust)


def surcharge_up_to(
    record: KeyRecord | None, amount: int, memo: str, adjust: Callable[..., ChargeResult]
) -> tuple[int, int]:
    """`charge_up_to` of any store: as much of `amount` as the record's balance allows, as one `surcharge`
    move (which the store still guards: never below zero); (charged, balance)."""
    if record is None:
        return 0, 0
    take = min(amount, record.credits)
    if take <= 0:
        return 0, record.credits
    result = adjust(record.key_hash, -take, "surcharge", memo, take)
    return (take, result.balance) if result.ok else (0, result.balance)
