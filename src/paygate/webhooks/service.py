"""The webhook service: what the HTTP API calls, and the bus subscriber that queues events.

`open_webhooks` (webhooks/bootstrap.py) validates the configured URLs (an unsafe one is a start-up
error) and loads the durable queue; the composition root (`compose/events.build_webhooks`) subscribes `on_events` to the
event bus (deferred: a tool call never waits for a webhook) and hooks the worker's start and stop
into the lifespan. Queuing writes the outbox in one
transaction per bus batch; the worker does the rest in the background.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from paygate.config import Settings
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.events.hub import Event, EventHub
from paygate.metrics import Metrics
from paygate.store.base import Store
from paygate.webhooks.checks import WebhookConflict, WebhookInvalid, WebhookNotFound
from paygate.webhooks.delivery import REMOVED, DestStats, Worker
from paygate.webhooks.payload import USAGE, shape, test_body
from paygate.webhooks.queue import Batch, DeadLetter, WebhookQueue
from paygate.webhooks.routing import Destination, Routes
from paygate.webhooks.sender import Outcome, Sender
from paygate.webhooks.ssrf import shown

log = logging.getLogger("paygate.webhooks")
PAUSED_META = "webhooks.pausedAt"


class WebhookService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        events: EventHub,
        metrics: Metrics,
        queue: WebhookQueue,
        routes: Routes,
        sender: Sender,
    ) -> None:
        s = settings
        self.store = store
        self.events = events
        self.queue = queue
        self.routes = routes
        self.sender = sender
        self.worker = Worker(
            queue,
            routes,
            sender,
            batch_size=s.webhook_batch_size,
            flush_seconds=s.webhook_flush_seconds,
            retry_base=s.webhook_retry_base_seconds,
            max_retries=s.webhook_max_retries,
            on_result=lambda ok: metrics.webhook_deliveries_for("success" if ok else "failure").inc(),
        )
        # (dead letters, the batches they became, max retries or None): the replay queue's bookkeeping
        self.after_replay: Callable[[Sequence[DeadLetter], Sequence[Batch], int | None], None] = lambda *_: None
        paused = store.get_meta(PAUSED_META)
        if paused:  # a pause outlives a restart, like maintenance mode
            self.worker.pause(float(paused))

    # the bus subscriber ----------------------------------------------------------------------
    def on_events(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.type == "backup.restored":
                self.routes.reload()
        if not self.routes.any:
            return
        rows: list[tuple[str, float, str, str, str]] = []
        for event in events:
            dests = self.routes.destinations_for(event)
            if not dests:
                continue
            record = self.store.get_key(event.key_hash) if event.key_hash else None
            kind, text = shape(event, record.name if record else None)
            rows += [(dest, event.timestamp, kind, event.type, text) for dest in dests]
        if self.routes.gateway is not None and self.routes.gateway.hooks:  # bounded (gateway_hooks.MAX_QUEUED)
            rows = self.routes.gateway.bound(rows, {d: p.count for d, p in self.queue.pending.items()})
        try:
            self.queue.enqueue(rows)
        except Exception:
            log.exception("could not queue %d webhook event(s)", len(rows))
            return
        if rows:
            self.worker.wake()

    async def start(self) -> None:
        await self.worker.start()

    async def stop(self) -> None:
        try:
            await self.worker.stop()
        finally:
            await self.sender.close()

    # pause / resume / replay / dead letters ---------------------------------------------------
    def pause(self, actor: str) -> dict[str, Any]:
        if not self.worker.paused:
            now = time.time()
            self.worker.pause(now)
            self.store.set_meta(PAUSED_META, repr(now))
            self.events.publish("webhook.pause", actor, bufferedEvents=self.queue.buffered)
        return {"paused": True, "pausedAt": iso_time(self.worker.paused_at), "bufferedEvents": self.queue.buffered}

    def resume(self, actor: str) -> dict[str, Any]:
        flushed = self.queue.buffered
        if self.worker.paused:
            self.store.set_meta(PAUSED_META, "")
            self.worker.resume()
            self.events.publish("webhook.resume", actor, flushedEvents=flushed)
        else:
            self.worker.flush_now()
        return {"paused": False, "flushedEvents": flushed}

    def dead_letters(self) -> list[dict[str, Any]]:
        out = []
        for index, d in enumerate(self.queue.dead_letters()):
            dest = self.routes.destination(d.dest)
            out.append(
                {
                    "index": index,
                    "id": d.id,
                    **self.dest_view(d.dest, dest),
                    "payload": _json(d.body),
                    **letter_fields(d),
                }
            )
        return out

    def clear_dead_letters(self, actor: str) -> int:
        removed = self.queue.clear_dead()
        self.events.publish("webhook.dead_letter_cleared", actor, cleared=removed)
        return removed

    def replay(self, indices: list[int] | None, actor: str) -> dict[str, Any]:
        letters = self.queue.dead_letters()
        if indices is not None:
            bad = [i for i in indices if i >= len(letters)]
            if bad:
                raise WebhookInvalid(
                    f"Invalid request: indices {bad[:10]} out of range (the dead-letter "
                    f"queue holds {len(letters)} entries: 0 to {len(letters) - 1})"
                )
            chosen = [letters[i] for i in sorted(set(indices))]
        else:
            chosen = letters
        # A dead letter whose destination is gone has nowhere to go: it stays, and is reported.
        ready = [d for d in chosen if self.routes.destination(d.dest) is not None]
        self.after_replay(ready, self.queue.replay(ready, time.time()), None)
        self.worker.wake()
        result = {
            "replayed": len(ready),
            "events": sum(d.event_count for d in ready),
            "skipped": len(chosen) - len(ready),
            "remaining": self.queue.dead_count,
        }
        self.events.publish("webhook.replayed", actor, **result)
        return result

    # test ------------------------------------------------------------------------------------
    async def test(self, message: str | None, actor: str) -> dict[str, Any]:
        default = self.routes.default
        if default is None:
            raise WebhookInvalid("No webhook URL configured (set webhookUrl / --webhook-url)")
        body = test_body(message or "Test event from PayGate", actor, time.time())
        outcome = await self.sender.post(default.url, body, secret=default.secret, test=True)
        self.worker.log.add(time.time(), default.url, default.label, outcome, 0, 1, ["webhook.test"])
        self.events.publish(
            "webhook.test", actor, url=shown(default.url), success=outcome.ok, statusCode=outcome.status
        )
        return _outcome_view(default, outcome)

    # reporting -------------------------------------------------------------------------------
    def dest_view(self, dest_id: str, dest: Destination | None) -> dict[str, Any]:
        if dest is None:
            return {"destination": dest_id if not dest_id.startswith("kw_") else "key", "type": REMOVED, "url": None}
        return dest.public()

    def stats(self) -> dict[str, Any]:
        totals = DestStats()
        per_dest = []
        ids = list(
            dict.fromkeys(
                [
                    *self.routes.destination_ids(),
                    *sorted(self.queue.dests()),
                    *sorted(self.queue.dead),
                    *sorted(self.worker.stats),
                ]
            )
        )
        for dest_id in ids:
            s = self.worker.stats_for(dest_id)
            for f in ("delivered", "delivered_events", "failed", "retries"):
                setattr(totals, f, getattr(totals, f) + getattr(s, f))
            pending = self.queue.pending.get(dest_id)
            per_dest.append(
                {
                    **self.dest_view(dest_id, self.routes.destination(dest_id)),
                    "delivered": s.delivered,
                    "deliveredEvents": s.delivered_events,
                    "failed": s.failed,
                    "retries": s.retries,
                    "pendingRetries": self.worker.pending_retries(dest_id),
                    "deadLetterCount": self.queue.dead.get(dest_id, 0),
                    "bufferedEvents": pending.count if pending else 0,
                }
            )
        return {
            "configured": self.routes.any,
            "url": shown(self.routes.default.url) if self.routes.default else None,
            "delivered": totals.delivered,
            "deliveredEvents": totals.delivered_events,
            "failed": totals.failed,
            "retries": totals.retries,
            "pendingRetries": self.worker.pending_retries(),
            "deadLetterCount": self.queue.dead_count,
            "paused": self.worker.paused,
            "pausedAt": iso_time(self.worker.paused_at),
            "bufferedEvents": self.queue.buffered,
            "queuedBatches": len(self.queue.batches),
            "inFlight": self.worker.in_flight,
            "maxRetries": self.worker.max_retries,
            "batchSize": self.worker.batch_size,
            "destinations": per_dest,
        }

    def health(self) -> dict[str, Any]:
        s = self.stats()
        attempts = s["delivered"] + s["failed"]
        if not s["configured"]:
            status = "not_configured"
        elif s["paused"]:
            status = "paused"
        elif s["deadLetterCount"]:
            status = "degraded"
        elif s["pendingRetries"]:
            status = "retrying"
        else:
            status = "healthy"
        return {
            "configured": s["configured"],
            "status": status,
            "delivery": {
                "totalDelivered": s["delivered"],
                "totalFailed": s["failed"],
                "totalRetries": s["retries"],
                "pendingRetries": s["pendingRetries"],
                "deadLetterCount": s["deadLetterCount"],
                "bufferedEvents": s["bufferedEvents"],
                "paused": s["paused"],
                "pausedAt": s["pausedAt"],
                "successRate": round(100 * s["delivered"] / attempts, 2) if attempts else 100.0,
            },
            "generatedAt": iso_time(time.time()),
        }

    def dead_letter_count(self) -> float:
        return float(self.queue.dead_count)

    def queue_depth(self) -> float:
        return float(self.queue.buffered + sum(b.event_count for b in self.queue.batches.values()))

    # filters and per-key webhooks (the events name what changed, never a URL's path or a secret) ----
    def create_filter(self, actor: str, **fields: Any) -> dict[str, Any]:
        rule = self.routes.create_filter(**fields)
        self.events.publish(
            "webhook.filter_created",
            actor,
            id=rule.id,
            name=rule.name,
            events=list(rule.events),
            url=shown(rule.url),
            active=rule.active,
        )
        return rule.public()

    def update_filter(self, actor: str, filter_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        rule, changed = self.routes.update_filter(filter_id, changes)
        self.events.publish("webhook.filter_updated", actor, id=rule.id, name=rule.name, changes=changed)
        self.worker.wake()
        return rule.public()

    def delete_filter(self, actor: str, filter_id: str) -> dict[str, Any]:
        rule = self.routes.delete_filter(filter_id)
        self.events.publish("webhook.filter_deleted", actor, id=rule.id, name=rule.name)
        self.worker.wake()  # what was queued for it is dead-lettered ("destination removed")
        return {"deleted": True, "id": rule.id}

    def set_key_hook(self, actor: str, record: KeyRecord, url: str, secret: str | None) -> dict[str, Any]:
        if not record.active:
            raise WebhookConflict("cannot set a webhook on a revoked key")
        hook = self.routes.set_hook(record.key_hash, url, secret)
        self.events.emit(
            "key.webhook_set",
            actor,
            {"keyMasked": record.masked, "url": shown(hook.url), "hasSecret": hook.secret is not None},
            key_hash=record.key_hash,
        )
        return self.key_hook_view(record)

    def remove_key_hook(self, actor: str, record: KeyRecord) -> dict[str, Any]:
        hook = self.routes.remove_hook(record.key_hash)
        if hook is None:
            raise WebhookNotFound("This key has no webhook")
        # The hook is gone already: this event reaches the default URL and matching filters only.
        self.events.emit("key.webhook_removed", actor, {"keyMasked": record.masked}, key_hash=record.key_hash)
        self.worker.wake()
        return {"removed": True, "keyMasked": record.masked}

    def key_hook_view(self, record: KeyRecord) -> dict[str, Any]:
        hook = self.routes.hooks.get(record.key_hash)
        if hook is None:
            return {"keyMasked": record.masked, "configured": False, "url": None, "hasSecret": False}
        s = self.worker.stats_for(hook.id)
        pending = self.queue.pending.get(hook.id)
        return {
            "keyMasked": record.masked,
            "configured": True,
            "url": shown(hook.url),
            "hasSecret": hook.secret is not None,
            "createdAt": iso_time(hook.created_at),
            "updatedAt": iso_time(hook.updated_at),
            "delivered": s.delivered,
            "failed": s.failed,
            "pendingRetries": self.worker.pending_retries(hook.id),
            "deadLetterCount": self.queue.dead.get(hook.id, 0),
            "bufferedEvents": pending.count if pending else 0,
        }

    def filters(self) -> list[dict[str, Any]]:
        """Every filter rule (config-file ones included), secrets hidden."""
        return [f.public() for f in self.routes.filters.values()]

    def delivery_log(self, limit: int, since: float | None, success: bool | None) -> dict[str, Any]:
        """Delivery attempts, newest first, and how many the in-memory log holds."""
        entries = self.log_entries(limit, since, success)
        return {"entries": entries, "count": len(entries), "total": len(self.worker.log.entries)}

    def log_entries(self, limit: int, since: float | None, success: bool | None) -> list[dict[str, Any]]:
        out = []
        for entry in reversed(self.worker.log.entries):
            if since is not None and entry.timestamp < since:
                continue
            if success is not None and entry.success != success:
                continue
            out.append(entry.public())
            if len(out) >= limit:
                break
        return out


def letter_fields(d: DeadLetter) -> dict[str, Any]:
    """What a dead letter's views (/webhooks/dead-letter, /admin/webhook-replay) say of its delivery."""
    return {
        "eventCount": d.event_count,
        "eventTypes": d.event_types,
        "attempts": d.attempts,
        "lastError": d.last_error,
        "lastStatusCode": d.last_status,
        "createdAt": iso_time(d.created),
        "failedAt": iso_time(d.failed_at),
    }


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _outcome_view(dest: Destination, outcome: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {
        "url": shown(dest.url),
        "success": outcome.ok,
        "statusCode": outcome.status,
        "responseTime": outcome.ms,
    }
    if outcome.error is not None:
        out["error"] = outcome.error
    return out


__all__ = ["USAGE", "WebhookService"]
