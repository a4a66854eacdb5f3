"""The background delivery worker: batching, retries with exponential backoff, dead letters, the log.

One asyncio task schedules; each destination has at most one batch in flight and sends its batches
in order (head of line): while a batch waits for a retry, later events wait in the outbox, so a dead
receiver costs one batch's retries at a time, not a storm, and nothing is dropped. A batch is formed
when a destination has `batch_size` events queued, when its oldest queued event is `flush_seconds`
old, or at once on resume and at shutdown. A failed batch is retried after base·2^(n-1) seconds
(1 s, 2 s, 4 s … by default) with `X-PayGate-Retry: n`, up to `max_retries` times, then dead-lettered.
A batch whose destination no longer exists is dead-lettered without a send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paygate.core.values import iso_time
from paygate.webhooks.queue import Batch, WebhookQueue
from paygate.webhooks.routing import Routes
from paygate.webhooks.sender import Outcome, Sender
from paygate.webhooks.ssrf import shown

log = logging.getLogger("paygate.webhooks")

LOG_SIZE = 500  # delivery attempts kept for GET /webhooks/log (reference: 500, in memory)
MAX_IDLE_SECONDS = 60.0
SHUTDOWN_GRACE_SECONDS = 5.0  # the final flush at shutdown waits at most this long
REMOVED = "destination removed"


@dataclass(slots=True)
class DestStats:
    delivered: int = 0  # successful POSTs
    delivered_events: int = 0
    failed: int = 0  # failed attempts (each retry counts)
    retries: int = 0  # attempts after the first
    last_status: int | None = None  # of the last attempt (0: no answer)
    last_error: str | None = None
    last_at: float | None = None


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    timestamp: float
    url: str
    destination: str
    status: int
    success: bool
    ms: float
    attempt: int
    error: str | None
    event_count: int
    event_types: list[str]

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": iso_time(self.timestamp),
            "url": self.url,
            "destination": self.destination,
            "statusCode": self.status,
            "success": self.success,
            "responseTime": self.ms,
            "attempt": self.attempt,
            "error": self.error,
            "eventCount": self.event_count,
            "eventTypes": self.event_types,
        }


class DeliveryLog:
    def __init__(self, size: int = LOG_SIZE) -> None:
        self.entries: deque[LogEntry] = deque(maxlen=size)
        self._next = 1

    def add(
        self,
        now: float,
        url: str,
        destination: str,
        outcome: Outcome,
        attempt: int,
        event_count: int,
        event_types: list[str],
    ) -> None:
        self.entries.append(
            LogEntry(
                self._next,
                now,
                shown(url),
                destination,
                outcome.status,
                outcome.ok,
                outcome.ms,
                attempt,
                outcome.error,
                event_count,
                event_types,
            )
        )
        self._next += 1


Counted = Callable[[bool], None]


class Worker:
    def __init__(
        self,
        queue: WebhookQueue,
        routes: Routes,
        sender: Sender,
        *,
        batch_size: int,
        flush_seconds: float,
        retry_base: float,
        max_retries: int,
        on_result: Counted = lambda ok: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.routes = routes
        self.sender = sender
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.retry_base = retry_base
        self.max_retries = max_retries
        self.on_result = on_result
        self.clock = clock
        self.log = DeliveryLog()
        self.retry_limits: dict[int, int] = {}  # batch id → its own max retries (a replay's, replay_queue.py)
        self.on_settled: Callable[[Batch, bool], None] = lambda batch, ok: None  # delivered / dead-lettered
        self.stats: dict[str, DestStats] = {}
        self.paused = False
        self.paused_at: float | None = None
        self._force_before = float("-inf")  # queued events older than this go out now, batch full or not
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()  # set after every attempt (the shutdown flush waits on it)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._wake = asyncio.Event()  # bound to the running loop
        self._progress = asyncio.Event()
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-delivery")

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Flush what is queued (unless paused), waiting at most `grace` seconds; whatever is not
        delivered by then stays queued on disk for the next start."""
        self.flush_now(float("inf"))
        deadline = time.monotonic() + grace
        while (left := deadline - time.monotonic()) > 0 and (self._inflight or self._due_work()):
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._progress.wait()
        self._stopping = True
        self.wake()
        tasks = [t for t in (self._task, *self._inflight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None
        self._inflight.clear()

    def wake(self) -> None:
        self._wake.set()

    def flush_now(self, before: float | None = None) -> None:
        """Send everything queued before `before` (default: now) without waiting for full batches."""
        self._force_before = self.clock() if before is None else before
        self.wake()

    def pause(self, now: float) -> None:
        self.paused, self.paused_at = True, now

    def resume(self) -> None:
        self.paused, self.paused_at = False, None
        self.flush_now()

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def stats_for(self, dest: str) -> DestStats:
        return self.stats.setdefault(dest, DestStats())

    # scheduling ------------------------------------------------------------------------------
    async def _run(self) -> None:
        # The flag, not only the cancellation, ends the loop: a cancel that lands as the wake-up
        # completes can be swallowed by the wait (asyncio.wait_for on 3.11 does).
        while not self._stopping:
            self._wake.clear()
            try:
                delay = self._dispatch(self.clock())
            except Exception:  # a store error must not end delivery for good; try again shortly
                log.exception("webhook scheduling failed")
                delay = 1.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.001, delay)):
                    await self._wake.wait()

    def _due_work(self) -> bool:
        if self.paused:
            return False
        now = self.clock()
        for dest in self.queue.dests():
            if dest in self._inflight:
                continue
            head = self.queue.head(dest)
            if head is not None:
                if head.next_at <= now:
                    return True
            elif self._batch_due(dest, now) <= now:
                return True
        return False

    def _batch_due(self, dest: str, now: float) -> float:
        pending = self.queue.pending.get(dest)
        if pending is None or pending.count == 0:
            return float("inf")
        if pending.count >= self.batch_size or pending.oldest <= self._force_before:
            return now
        return pending.oldest + self.flush_seconds

    def _dispatch(self, now: float) -> float:
        """Start a send for every destination with due work; seconds until the next due work."""
        next_due = now + MAX_IDLE_SECONDS
        if self.paused:
            return MAX_IDLE_SECONDS
        for dest in sorted(self.queue.dests()):
            if dest in self._inflight:
                continue
            head = self.queue.head(dest)
            if head is None:
                due = self._batch_due(dest, now)
                if due > now:
                    next_due = min(next_due, due)
                    continue
                head = self.queue.take_batch(dest, self.batch_size, now)
                if head is None:
                    continue
            elif head.next_at > now:
                next_due = min(next_due, head.next_at)
                continue
            self._inflight[dest] = asyncio.get_running_loop().create_task(self._attempt(head))
        return max(0.0, next_due - now)

    # one attempt -----------------------------------------------------------------------------
    async def _attempt(self, batch: Batch) -> None:
        try:
            await self._deliver(batch)
        except asyncio.CancelledError:
            raise
        except Exception:  # the batch stays in the table and is tried again
            log.exception("webhook delivery of batch %d failed unexpectedly", batch.id)
        finally:
            self._inflight.pop(batch.dest, None)
            self._progress.set()
            self.wake()

    async def _deliver(self, batch: Batch) -> None:
        dest = self.routes.destination(batch.dest)
        if dest is None:
            self.queue.dead_letter(batch, REMOVED, 0, self.clock())
            self.on_settled(batch, False)
            return
        body = self.queue.body(batch)
        outcome = await self.sender.post(
            dest.url, body, secret=dest.secret, attempt=batch.attempt, delivery_id=batch.id, timeout=dest.timeout
        )
        now = self.clock()
        stats = self.stats_for(batch.dest)
        if batch.attempt > 0:
            stats.retries += 1
        stats.last_status, stats.last_error, stats.last_at = outcome.status, outcome.error, now
        self.log.add(now, dest.url, dest.label, outcome, batch.attempt, batch.event_count, batch.event_types)
        self.on_result(outcome.ok)
        if outcome.ok:
            stats.delivered += 1
            stats.delivered_events += batch.event_count
            self.queue.delivered(batch)
            self.on_settled(batch, True)
            return
        stats.failed += 1
        error = outcome.error or f"HTTP {outcome.status}"
        if batch.attempt >= self.retry_limits.get(batch.id, self.max_retries):
            log.warning(
                "webhook batch %d (%d events) to %s dead-lettered after %d attempt(s): %s",
                batch.id,
                batch.event_count,
                shown(dest.url),
                batch.attempt + 1,
                error,
            )
            self.queue.dead_letter(batch, error, outcome.status, now)
            self.on_settled(batch, False)
        else:
            self.queue.reschedule(batch, batch.attempt + 1, now + self.retry_base * 2**batch.attempt, error)

    # reporting -------------------------------------------------------------------------------
    def pending_retries(self, dest: str | None = None) -> int:
        return sum(1 for b in self.queue.batches.values() if b.attempt > 0 and (dest is None or b.dest == dest))
