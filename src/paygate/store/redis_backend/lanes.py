"""A lane: one instance's numbered stream of `MONEY` script batches (store/redis_backend/scripts.py).

Each process has two: `c` for hot-path charges (sent from the event loop by writer.ChargeWriter, which
keeps the same rules on its own connection) and `a` for every other write (this class, synchronous).
A batch whose reply is lost is sent once more with the same number (Redis answers a repeat from memory,
so it applies at most once); if that fails too, the lane remembers the number as *doubtful*, and before
its next batch settles it with `FENCE`: either it had been applied (its reply comes back) or it never
can be.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import redis

from paygate.store.errors import StoreUnavailable
from paygate.store.redis_backend.names import LINK_ERRORS, Names, as_text
from paygate.store.redis_backend.scripts import FENCE, MONEY

log = logging.getLogger("paygate.store")

# Usage rows kept in the shared stream (XADD MAXLEN ~): older ones are trimmed. The reference keeps 100k.
USAGE_CAP = 1_000_000


class Reply:
    """A batch's reply: one line per operation."""

    __slots__ = ("lines",)

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n") if text else []


class Lane:
    def __init__(self, client: redis.Redis, names: Names, instance: str, name: str, usage_cap: int) -> None:
        self.names = names
        self.instance = instance
        self.lane = f"{instance}:{name}"
        self.usage_cap = str(usage_cap)
        self.seq = 0
        self.doubtful: int | None = None
        self._money = client.register_script(MONEY)
        self._fence = client.register_script(FENCE)
        self._lock = threading.Lock()  # one batch at a time per lane, whoever calls

    def run(self, ops: Sequence[Sequence[str]]) -> Reply:
        """Apply the operations as one script; StoreUnavailable when Redis cannot be reached (twice)."""
        with self._lock:
            if self.doubtful is not None:
                self.settle_doubt()
            self.seq += 1
            args: list[str] = [self.names.base, self.lane, str(self.seq), self.usage_cap, self.instance, "1"]
            for op in ops:
                args += op
            for attempt in (1, 2):
                try:
                    return Reply(as_text(self._money(args=args)))
                except LINK_ERRORS as exc:
                    if attempt == 2:
                        self.doubtful = self.seq
                        raise StoreUnavailable(f"redis unreachable: {exc}") from exc
            raise AssertionError("unreachable")

    def settle_doubt(self) -> Reply | None:
        """Settle the doubtful batch: its reply if it had been applied, None if it never will be."""
        doubtful = self.doubtful
        if doubtful is None:
            return None
        try:
            text = as_text(self._fence(args=[self.names.base, self.lane, str(doubtful)]))
        except LINK_ERRORS as exc:
            raise StoreUnavailable(f"redis unreachable: {exc}") from exc
        self.doubtful = None
        return fenced(text, doubtful, self.lane)


def fenced(text: str, batch: int, lane: str) -> Reply | None:
    """What `FENCE` said of a batch whose reply was lost: its reply if it had been applied, else None."""
    if text == "fenced":
        log.warning("redis: batch %s of lane %s was never applied (its reply had been lost)", batch, lane)
        return None
    log.warning("redis: batch %s of lane %s had been applied (its reply had been lost)", batch, lane)
    return Reply(text.removeprefix("applied\n"))
