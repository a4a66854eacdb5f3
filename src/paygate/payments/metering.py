"""Metered billing: the credits each key was charged, reported to a Stripe Billing Meter per window, for
operators who invoice in arrears (`stripe.meter`, docs/payments.md).

Off the hot path, from what is already durable: every `intervalSeconds` (once the window is closed, plus
LAG_SECONDS for charges still being written) the usage log's sums for the window become one meter event
per key whose `customerTag` names a Stripe customer, stored as a document before anything is sent, and the
window's end is recorded (meta). Each event's identifier is derived from the key and the window, so a
restart that builds it again, or another instance of a fleet building the same one, produces the same
identifier, and Stripe keeps one. Sending runs in a worker thread (the stripe package), each event retried
with a doubling delay up to `maxAttempts`, then dead-lettered (a document, event `stripe.meter_dead_lettered`)
until an admin queues it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from paygate.config_stripe import StripeMeterConfig
from paygate.core.values import iso_time
from paygate.keys.service import Publish
from paygate.store.base import Store

log = logging.getLogger("paygate.payments")

PENDING_DOC = "stripe_meter"
DEAD_DOC = "stripe_meter_dead"
WATERMARK = "stripe_meter_until"  # meta: the end of the last window turned into meter events
LAG_SECONDS = 10.0  # a window is read this long after it closed (charges are written up to ~20 ms late)
RETRY_BASE_SECONDS = 5.0
RETRY_MAX_SECONDS = 3600.0
MAX_PER_PASS = 100  # meter events sent per delivery pass

Send = Callable[[dict[str, Any]], None]  # one meter event to Stripe; raises on failure


def identifier(key_hash: str, start: float, until: float) -> str:
    digest = hashlib.sha256(f"{key_hash}|{int(start)}|{int(until)}".encode()).hexdigest()[:32]
    return f"pg_{digest}"


class MeterReporter:
    def __init__(self, store: Store, config: StripeMeterConfig, send: Send, publish: Publish) -> None:
        self.store = store
        self.config = config
        self.send = send
        self.publish = publish
        self._delivering: asyncio.Task[int] | None = None

    # --- collecting ----------------------------------------------------------------------------
    def collect(self, now: float) -> int:
        """Turn the windows closed by `now` into meter events; the number made. The first run only
        starts the count (nothing before it is reported)."""
        step = self.config.interval_seconds
        until = (now - LAG_SECONDS) // step * step
        mark = self.store.get_meta(WATERMARK)
        if mark is None:
            self.store.set_meta(WATERMARK, repr(until))
            return 0
        start = float(mark)
        if until <= start:
            return 0
        before, after = self.store.usage_sums(start), self.store.usage_sums(until)
        made = 0
        for key_hash, (_, credits) in before.items():
            value = credits - after.get(key_hash, (0, 0))[1]
            record = self.store.get_key(key_hash)
            customer = record.tags.get(self.config.customer_tag) if record is not None else None
            if value <= 0 or not customer:
                continue
            ident = identifier(key_hash, start, until)
            self.store.doc_put(
                PENDING_DOC,
                ident,
                {
                    "identifier": ident,
                    "eventName": self.config.event_name,
                    "customer": customer,
                    "value": value,
                    "timestamp": int(until) - 1,
                    "window": [iso_time(start), iso_time(until)],
                    "keyHash": key_hash,
                    "attempts": 0,
                    "nextAt": now,
                    "lastError": None,
                },
            )
            made += 1
        self.store.set_meta(WATERMARK, repr(until))
        return made

    # --- delivering ----------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Ticker: collect, then start a delivery pass unless one is running."""
        self.collect(now)
        idle = self._delivering is None or self._delivering.done()
        if idle and any(float(d["nextAt"]) <= now for d in self.store.doc_scan(PENDING_DOC)):
            self._delivering = asyncio.get_running_loop().create_task(self.deliver(now))

    async def stop(self) -> None:
        """Stop hook: a pass in flight is cancelled (its events stay queued; the one being sent, if Stripe
        took it, is kept once by its identifier when it is sent again)."""
        task = self._delivering
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def deliver(self, now: float) -> int:
        """Send what is due; the number sent."""
        due = sorted(
            (d for d in self.store.doc_list(PENDING_DOC) if float(d["nextAt"]) <= now), key=lambda d: d["nextAt"]
        )
        sent = 0
        for doc in due[:MAX_PER_PASS]:
            event = {
                "event_name": doc["eventName"],
                "identifier": doc["identifier"],
                "timestamp": doc["timestamp"],
                "payload": {"stripe_customer_id": doc["customer"], "value": str(doc["value"])},
            }
            try:
                await asyncio.to_thread(self.send, event)
            except Exception as exc:  # the stripe package's errors and the transport's: retried or dead-lettered
                self._failed(doc, f"{type(exc).__name__}: {str(exc)[:200]}", now)
                continue
            self.store.doc_delete(PENDING_DOC, str(doc["identifier"]))
            sent += 1
        return sent

    def _failed(self, doc: dict[str, Any], error: str, now: float) -> None:
        doc["attempts"] = int(doc["attempts"]) + 1
        doc["lastError"] = error
        ident = str(doc["identifier"])
        if doc["attempts"] >= self.config.max_attempts:
            doc["failedAt"] = iso_time(now)
            self.store.doc_put(DEAD_DOC, ident, doc)
            self.store.doc_delete(PENDING_DOC, ident)
            log.warning("stripe meter event %s dead-lettered after %d attempts: %s", ident, doc["attempts"], error)
            self.publish(
                "stripe.meter_dead_lettered",
                "system",
                identifier=ident,
                value=doc["value"],
                attempts=doc["attempts"],
                error=error,
            )
            return
        doc["nextAt"] = now + min(RETRY_BASE_SECONDS * 2 ** (doc["attempts"] - 1), RETRY_MAX_SECONDS)
        self.store.doc_put(PENDING_DOC, ident, doc)

    # --- admin ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        pending = self.store.doc_list(PENDING_DOC)
        dead = sorted(self.store.doc_list(DEAD_DOC), key=lambda d: str(d.get("failedAt")))
        hide = ("keyHash",)
        return {
            "eventName": self.config.event_name,
            "reportedUntil": iso_time(float(mark)) if (mark := self.store.get_meta(WATERMARK)) else None,
            "pending": len(pending),
            "queued": [{k: v for k, v in d.items() if k not in hide} for d in pending[:100]],
            "deadLetters": [{k: v for k, v in d.items() if k not in hide} for d in dead],
        }

    def requeue(self, actor: str, now: float | None = None) -> int:
        """Dead-lettered meter events queued again (same identifiers: Stripe still keeps one of each)."""
        now = time.time() if now is None else now
        moved = 0
        for ident, doc in self.store.doc_items(DEAD_DOC):
            doc.pop("failedAt", None)
            self.store.doc_put(PENDING_DOC, ident, {**doc, "attempts": 0, "nextAt": now})
            self.store.doc_delete(DEAD_DOC, ident)
            moved += 1
        self.publish("stripe.meter_requeued", actor, count=moved)
        return moved


def meter_doc_problem(doc_id: str, doc: dict[str, Any]) -> str | None:
    """What a restore checks of a pending or dead-lettered meter event (compose/doc_checks.py)."""
    if doc.get("identifier") != doc_id:
        return "identifier: must equal the document id"
    if not isinstance(doc.get("value"), int) or doc["value"] < 1 or not isinstance(doc.get("customer"), str):
        return "value, customer: required"
    if not isinstance(doc.get("attempts"), int) or not isinstance(doc.get("nextAt"), (int, float)):
        return "attempts, nextAt: required"
    return None
