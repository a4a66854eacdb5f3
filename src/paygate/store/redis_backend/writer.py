"""The hot path's charges, sent to Redis from a thread of their own.

A tool call's charge is decided on this process's copy of the balance (store/redis_backend/mirror.py),
held there, and queued here; the caller awaits its future before forwarding the call. This thread takes
everything queued, sends it as one batch of the `c` lane (one script, one round trip, however many
charges) and hands the reply to the event loop, which resolves each future: done, or `ChargeRefused` when
Redis's balance could not cover it (another instance spent it first), or `ChargeNotRecorded` when Redis
could not be reached. The next batch is sent only once the loop has taken in the reply of the last.

A batch whose reply is lost is settled as soon as Redis is back (lanes.Lane.settle_doubt): if it had been
applied, its charges are refunded (their calls were never forwarded), until the refund is confirmed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from paygate.core.records import UsageEvent
from paygate.store.errors import StoreUnavailable
from paygate.store.redis_backend.codec import adjust_op
from paygate.store.redis_backend.lanes import Lane, Reply

log = logging.getLogger("paygate.store")

NOT_FORWARDED = "not forwarded: redis connection lost"
MAX_BACKOFF = 1.0


@dataclass(slots=True)
class Held:
    """One queued operation: a charge (or batch of charges) on one key, or a usage row alone."""

    key_hash: str
    credits: int
    calls: int
    op: list[str]
    future: asyncio.Future[None] | None
    ts: float
    events: tuple[UsageEvent, ...]  # the usage rows it writes (reads show them before they are sent)
    team_id: str | None = None  # a refund of it gives the call back to the team's quota too


Outcome = Reply | StoreUnavailable


class Link:
    """Whether Redis is reachable, as the last attempt found it (writer, listener and store share one)."""

    def __init__(self) -> None:
        self.up = True
        self.wake = threading.Event()  # set to cut a back-off short (closing)


class ChargeWriter:
    def __init__(self, lane: Lane, link: Link, settle: Callable[[list[Held], Outcome], None]) -> None:
        self.lane = lane
        self.link = link
        self._settle = settle
        self._queue: list[Held] = []
        self._cond = threading.Condition()
        self._taken = threading.Event()
        self._replied = threading.Event()  # clear while a batch is out without its reply
        self._replied.set()
        self._closing = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.in_flight: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="paygate-redis-charges", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, held: Held) -> None:
        with self._cond:
            self._queue.append(held)
            self._cond.notify()

    def unsent(self) -> list[UsageEvent]:
        """The usage rows queued and not yet sent, once the batch in flight (if any) has its reply: with
        what Redis holds, every decided call exactly once. Never waits for the event loop (its caller)."""
        self._replied.wait(5.0)
        with self._cond:
            return [event for held in self._queue for event in held.events]

    def close(self) -> None:
        """Send what is queued, then stop (the thread ends once its queue is empty)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self.link.wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    # the thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
                self.in_flight = {h.key_hash for h in batch if h.future is not None}
                self._replied.clear()
            try:
                outcome: Outcome = self.lane.run([h.op for h in batch])
                self.link.up = True
            except StoreUnavailable as exc:
                self.link.up = False
                outcome = exc
            finally:
                self._replied.set()
            self._deliver(batch, outcome)
            if isinstance(outcome, StoreUnavailable):
                self._recover(batch)

    def _deliver(self, batch: list[Held], outcome: Outcome) -> None:
        """Hand the reply to the event loop and wait until it has been taken in."""
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            self._settle(batch, outcome)
            self.in_flight = set()
            return
        self._taken.clear()

        def take() -> None:
            try:
                self._settle(batch, outcome)
            finally:
                self.in_flight = set()
                self._taken.set()

        try:
            loop.call_soon_threadsafe(take)
        except RuntimeError:  # the loop closed meanwhile
            take()
        while not self._taken.wait(0.5):
            if loop.is_closed() or not loop.is_running():
                take()
                return

    def _recover(self, batch: list[Held]) -> None:
        """Redis was lost with `batch` in flight: wait for it, then refund whatever of it was applied."""
        refunds: list[list[str]] | None = None  # known once the batch is settled
        delay = 0.05
        while True:
            try:
                if refunds is None:
                    reply = self.lane.settle_doubt()
                    refunds = self._refunds(batch, reply) if reply is not None else []
                elif self.lane.doubtful is not None and self.lane.settle_doubt() is not None:
                    refunds = []  # the refunds' own batch had been applied: never send it twice
                if refunds:
                    self.lane.run(refunds)
                    log.warning("redis: refunded %d charges whose calls were not forwarded", len(refunds))
                self.link.up = True
                return
            except StoreUnavailable:
                self.link.up = False
                if self._closing:
                    log.error("redis: closing with a batch of charges unsettled (lane %s)", self.lane.lane)
                    return
                self.link.wake.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    @staticmethod
    def _refunds(batch: list[Held], reply: Reply) -> list[list[str]]:
        ops = []
        for held, line in zip(batch, reply.lines, strict=False):
            if held.future is not None and line.startswith("1 ") and held.credits:
                ops.append(
                    adjust_op(held.key_hash, held.credits, "refund", NOT_FORWARDED, -held.credits, -held.calls, held.ts)
                )
        return ops
