"""Multi-key money moves for the SQLite store: transfers and rotation.

A mixin of `SQLiteStore` (kept apart to keep that module small); each move is
one transaction and updates the in-memory records only after COMMIT.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Protocol

from paygate.core.records import KeyRecord
from paygate.store.rollups import CallRollups
from paygate.store.rows import KEY_COLUMNS, integrity_error, record_values


class _StoreCore(Protocol):
    _keys: dict[str, KeyRecord]
    generation: int
    rollups: CallRollups

    @property
    def db(self) -> sqlite3.Connection: ...
    def flush(self) -> None: ...
    def _ledger(self, key_hash: str, delta: int, kind: str, balance: int, memo: str | None) -> None: ...


class KeyMoves:
    def transfer(self: _StoreCore, from_hash: str, to_hash: str, amount: int, memo: str) -> tuple[int, int] | None:
        """Move `amount` from one key to another in one transaction: (from_balance, to_balance),
        or None (nothing moved) when either key is unknown or the source cannot cover it."""
        self.flush()
        source, target = self._keys.get(from_hash), self._keys.get(to_hash)
        if source is None or target is None or from_hash == to_hash or amount <= 0:
            return None
        db = self.db
        move = "UPDATE keys SET credits = credits + ?1 WHERE key_hash = ?2 AND credits + ?1 >= 0 RETURNING credits"
        db.execute("BEGIN IMMEDIATE")
        try:
            out = db.execute(move, (-amount, from_hash)).fetchone()
            if out is None:
                db.execute("ROLLBACK")
                return None
            into = db.execute(move, (amount, to_hash)).fetchone()
            self._ledger(from_hash, -amount, "transfer_out", int(out[0]), memo)
            self._ledger(to_hash, amount, "transfer_in", int(into[0]), memo)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        source.credits, target.credits = int(out[0]), int(into[0])
        return source.credits, target.credits

    def rekey(self: _StoreCore, old_hash: str, new: KeyRecord, memo: str = "rotate") -> None:
        """Rotation: `new` (a copy of the old record under a new hash) takes over the balance,
        counters and usage history; the old key is left revoked with nothing on it and a pointer to
        its successor (`extra["rotatedTo"]`), so anything still naming the old hash after a crash
        can find the new key. One transaction."""
        self.flush()
        old = self._keys[old_hash]
        db = self.db
        placeholders = ",".join("?" * len(KEY_COLUMNS))
        balance = old.credits
        new.credits, new.alias = 0, old.alias
        retired = {**old.extra, "rotatedTo": new.key_hash}  # a new dict: `new` may share old's
        doc = record_values(dataclasses.replace(old, extra=retired))[-1]
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("UPDATE keys SET alias = NULL, active = 0, doc = ? WHERE key_hash = ?", (doc, old_hash))
            db.execute(f"INSERT INTO keys ({','.join(KEY_COLUMNS)}) VALUES ({placeholders})", record_values(new))
            if balance:
                db.execute("UPDATE keys SET credits = 0 WHERE key_hash = ?", (old_hash,))
                db.execute("UPDATE keys SET credits = ? WHERE key_hash = ?", (balance, new.key_hash))
                self._ledger(old_hash, -balance, "rotate_out", 0, memo)
                self._ledger(new.key_hash, balance, "rotate_in", balance, memo)
            db.execute(
                "UPDATE usage SET key_hash = ?, key_masked = ? WHERE key_hash = ?", (new.key_hash, new.masked, old_hash)
            )
            self.rollups.rekey(old_hash, new.key_hash)
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            new.credits = balance
            if isinstance(exc, sqlite3.IntegrityError):
                raise integrity_error(exc, f"key {new.masked}") from exc
            raise
        new.credits = balance
        old.credits, old.active, old.alias, old.extra = 0, False, None, retired
        self._keys[new.key_hash] = new
        self.generation += 1
