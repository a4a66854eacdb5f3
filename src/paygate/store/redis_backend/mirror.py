"""This process's copy of every key record, kept true to Redis.

The gate reads balances from here without a round trip, so the copy must not drift. Redis is the truth
for money; what differs here is exactly this process's charges Redis has not confirmed yet
(`unconfirmed`): admitted, sent or about to be sent. Every state Redis reports (a script's reply, another
instance's pub/sub message, the periodic refresh) carries the key's version; the newest one seen is kept,
and the copy is set to it less the unconfirmed charges, except while a batch of this process's charges is
in flight on the key: whether that state includes the batch is unknown, so the copy waits for the batch's
own reply, which settles the question (one batch is in flight at a time, and the writer sends the next
only after its reply has been taken in).

Everything here runs on the event loop's thread (or, with no loop, the caller's, under the store's lock).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from paygate.core.records import KeyRecord
from paygate.store.redis_backend.codec import MoneyState


class Mirror:
    def __init__(self) -> None:
        self.keys: dict[str, KeyRecord] = {}
        self.policy_json: dict[str, str] = {}  # the record JSON last installed, to notice policy changes
        self.truth: dict[str, MoneyState] = {}
        self.unconfirmed: dict[str, list[int]] = {}  # key hash -> [credits, calls]
        # the keys with charges in the batch being sent (the charge writer's, set by the store)
        self.in_flight: Callable[[], Collection[str]] = tuple

    def hold(self, record: KeyRecord, credits: int, calls: int, ts: float) -> None:
        """A charge admitted here, not yet confirmed by Redis."""
        record.credits -= credits
        record.total_spent += credits
        record.total_calls += calls
        record.last_used_at = ts
        pending = self.unconfirmed.get(record.key_hash)
        if pending is None:
            self.unconfirmed[record.key_hash] = [credits, calls]
        else:
            pending[0] += credits
            pending[1] += calls

    def release(self, key_hash: str, credits: int, calls: int) -> None:
        """A held charge is settled (confirmed, refused or failed): Redis's state now tells the rest."""
        pending = self.unconfirmed.get(key_hash)
        if pending is None:
            return
        pending[0] -= credits
        pending[1] -= calls
        if pending[0] <= 0 and pending[1] <= 0:
            del self.unconfirmed[key_hash]

    def absorb(self, key_hash: str, state: MoneyState) -> None:
        """A state Redis reported: kept if it is the newest, and applied unless a batch is in flight."""
        known = self.truth.get(key_hash)
        if known is None or state.version > known.version:
            self.truth[key_hash] = known = state
        if key_hash not in self.in_flight():
            self.apply(key_hash, known)

    def apply(self, key_hash: str, state: MoneyState) -> None:
        record = self.keys.get(key_hash)
        if record is None:
            return
        credits, calls = self.unconfirmed.get(key_hash, (0, 0))
        record.credits = max(state.credits - credits, 0)
        record.total_spent = state.spent + credits
        record.total_calls = state.calls + calls
        if state.last_used is not None and (record.last_used_at is None or state.last_used > record.last_used_at):
            record.last_used_at = state.last_used

    def settle(self, key_hashes: Collection[str]) -> None:
        """After a batch's reply was taken in: every key it touched is set from the newest state."""
        for key_hash in key_hashes:
            state = self.truth.get(key_hash)
            if state is not None:
                self.apply(key_hash, state)

    def install(self, record: KeyRecord, policy_json: str, state: MoneyState) -> None:
        """A whole record as Redis holds it (created, changed or rotated here or elsewhere)."""
        self.keys[record.key_hash] = record
        self.policy_json[record.key_hash] = policy_json
        self.absorb(record.key_hash, state)
