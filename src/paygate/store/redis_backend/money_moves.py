"""The Redis store's admin-path money moves (top-ups, refunds, adjustments, transfers, once-only moves):
one Lua script each (scripts.py), the result absorbed into this process's copy. The hot path's charges are
in store.py and writer.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from paygate.core.records import ChargeResult
from paygate.store.adjustments import surcharge_up_to
from paygate.store.once import OnceMove
from paygate.store.redis_backend import codec
from paygate.store.redis_backend.codec import MoneyState
from paygate.store.redis_backend.documents import locked
from paygate.store.redis_backend.lanes import Reply
from paygate.store.redis_backend.mirror import Mirror


class RedisMoneyMoves:
    mirror: Mirror
    _lock: threading.RLock

    if TYPE_CHECKING:  # RedisStore's (store.py)

        def _write(self, ops: Sequence[Sequence[str]]) -> Reply: ...
        def _moved(self, key_hash: str, line: str) -> ChargeResult: ...

    def adjust(
        self, key_hash: str, delta: int, kind: str, memo: str, spent_delta: int = 0, calls_delta: int = 0
    ) -> ChargeResult:
        """Move `delta` credits (never below zero) with a ledger entry of `kind`, atomically."""
        return self._adjust(key_hash, delta, kind, memo, spent_delta, calls_delta)

    @locked
    def _adjust(
        self, key_hash: str, delta: int, kind: str, memo: str, spent_delta: int, calls_delta: int, below: int = -1
    ) -> ChargeResult:
        if key_hash not in self.mirror.keys:
            return ChargeResult(False, 0)
        team = self.mirror.keys[key_hash].team_id
        op = codec.adjust_op(key_hash, delta, kind, memo, spent_delta, calls_delta, time.time(), team, below)
        return self._moved(key_hash, self._write([op]).lines[0])

    def topup_below(self, key_hash: str, amount: int, threshold: int, memo: str) -> ChargeResult:
        """A topup only while Redis's balance is below `threshold`: instances racing add it once."""
        return self._adjust(key_hash, amount, "topup", memo, 0, 0, max(threshold, 0))

    def refund(self, key_hash: str, amount: int, memo: str) -> ChargeResult:
        return self.adjust(key_hash, amount, "refund", memo, -amount, -1)

    def topup(self, key_hash: str, amount: int, memo: str) -> ChargeResult:
        return self.adjust(key_hash, amount, "topup", memo, 0)

    def charge_up_to(self, key_hash: str, amount: int, memo: str) -> tuple[int, int]:
        """Deduct as much of `amount` as the balance allows; returns (charged, balance)."""
        return surcharge_up_to(self.mirror.keys.get(key_hash), amount, memo, self.adjust)

    @locked
    def move_once(self, key_hash: str, delta: int, kind: str, memo: str, once_id: str) -> OnceMove:
        """As on SQLite (store/adjustments.py), in one script: the id is a field of `{prefix}:once`."""
        words = self._write([codec.once_op(key_hash, delta, kind, memo, time.time(), once_id)]).lines[0].split(" ")
        if words[0] == "none":
            return OnceMove("no_key", delta, 0, 0)
        state = MoneyState.parse(words[3:8])
        if key_hash in self.mirror.keys:
            self.mirror.absorb(key_hash, state)
        return OnceMove("applied" if words[0] == "new" else "duplicate", int(words[1]), int(words[2]), state.credits)

    @locked
    def transfer(self, from_hash: str, to_hash: str, amount: int, memo: str) -> tuple[int, int] | None:
        keys = self.mirror.keys
        if from_hash not in keys or to_hash not in keys or from_hash == to_hash or amount <= 0:
            return None
        op = ["xfer", from_hash, to_hash, str(amount), codec.json_text(memo), codec.ts_text(time.time())]
        words = self._write([op]).lines[0].split(" ")
        if words[0] != "1":
            return None
        source, target = MoneyState.parse(words[1:6]), MoneyState.parse(words[6:11])
        self.mirror.absorb(from_hash, source)
        self.mirror.absorb(to_hash, target)
        return source.credits, target.credits
