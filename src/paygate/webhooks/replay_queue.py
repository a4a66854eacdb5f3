"""The admin replay queue (GET/POST/DELETE /admin/webhook-replay): a view over the webhook pipeline's own
dead letters and batches (no second queue), with the reference's lifecycle.

An entry is a delivery that failed, with its request context (destination, URL as scheme + host, the
headers sent, the exact body, whether it is signed), in one of four states:

- `exhausted`: a dead letter (ran out of retries, or its destination was removed); id `dl_<n>`;
- `retrying`: a batch that failed at least once and waits for its next attempt; id `wb_<n>`;
- `pending`: a replayed dead letter queued again, not yet attempted; id `rp_…` (a replay's own id: the
  store reuses batch and dead-letter ids; a replay that fails and retries keeps it, `retrying`);
- `succeeded`: a replay that was then delivered (remembered, up to `MAX_REMEMBERED`).

Replays made here or by POST /webhooks/replay are tracked (documents of kind `webhook_replay`, so a
restart keeps them and their retry limit: `webhookReplayMaxRetries`, or the request's `maxRetries`). A
replay that fails its retries again becomes a new dead letter. Dead letters and remembered successes
older than `webhookReplayMaxAgeDays` are dropped by a ticker.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from paygate.core.domain_errors import Conflict, Invalid, NotFound
from paygate.core.values import iso_time
from paygate.webhooks.queue import Batch, DeadLetter
from paygate.webhooks.service import WebhookService, letter_fields

REPLAY_DOC = "webhook_replay"
STATUSES = ("pending", "retrying", "succeeded", "exhausted")
MAX_REMEMBERED = 1000  # successful replays kept for the view (oldest dropped first)
EXPIRY_EVERY_SECONDS = 60.0
DAY = 86_400.0


@dataclass(slots=True)
class Replay:
    id: str  # `rp_…`: batch and dead-letter ids are reused by the store, so a replay has its own
    batch: int
    dead_letter: int  # the dead letter it was made from
    dest: str
    event_count: int
    event_types: list[str]
    created: float
    replayed_at: float
    max_retries: int
    status: str = "pending"  # pending | succeeded (a failed replay is a dead letter again: forgotten here)
    finished_at: float | None = None


class ReplayQueue:
    def __init__(
        self,
        webhooks: WebhookService,
        max_retries: int | None,
        max_age_days: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.webhooks = webhooks
        self.store = webhooks.store
        self.max_retries = max_retries
        self.max_age_days = max_age_days
        self.clock = clock
        self.replays: dict[str, Replay] = {}  # by replay id
        self.by_batch: dict[int, Replay] = {}  # the pending ones, by the batch they are
        self._last_expiry = float("-inf")
        webhooks.worker.on_settled = self._settled
        webhooks.after_replay = self._track

    @property
    def effective_max_retries(self) -> int:
        return self.webhooks.worker.max_retries if self.max_retries is None else self.max_retries

    def load(self) -> None:
        """Tracked replays from the store; one whose batch is gone (settled as the process died) is dropped."""
        batches = self.webhooks.queue.batches
        for doc_id, doc in self.store.doc_items(REPLAY_DOC):
            try:
                r = Replay(**doc)
            except TypeError:
                self.store.doc_delete(REPLAY_DOC, doc_id)
                continue
            if r.status == "pending" and r.batch not in batches:
                self.store.doc_delete(REPLAY_DOC, doc_id)
                continue
            self.replays[r.id] = r
            if r.status == "pending":
                self.by_batch[r.batch] = r
                self.webhooks.worker.retry_limits[r.batch] = r.max_retries

    # bookkeeping (called by the worker and the webhook service) ------------------------------------
    def _track(self, letters: Sequence[DeadLetter], batches: Sequence[Batch], max_retries: int | None) -> None:
        limit = self.effective_max_retries if max_retries is None else max_retries
        now = self.clock()
        for d, b in zip(letters, batches, strict=True):
            r = Replay(
                "rp_" + secrets.token_hex(6),
                b.id,
                d.id,
                d.dest,
                d.event_count,
                list(d.event_types),
                d.created,
                now,
                limit,
            )
            self.replays[r.id] = self.by_batch[b.id] = r
            self.webhooks.worker.retry_limits[b.id] = limit
            self.store.doc_put(REPLAY_DOC, r.id, asdict(r))

    def _settled(self, batch: Batch, ok: bool) -> None:
        self.webhooks.worker.retry_limits.pop(batch.id, None)
        r = self.by_batch.pop(batch.id, None)
        if r is None:
            return
        if not ok:  # exhausted again: the new dead letter is the entry now
            self._forget(r)
            return
        r.status, r.finished_at = "succeeded", self.clock()
        self.store.doc_put(REPLAY_DOC, r.id, asdict(r))
        done = sorted((x for x in self.replays.values() if x.status == "succeeded"), key=lambda x: x.finished_at or 0)
        for old in done[: max(0, len(done) - MAX_REMEMBERED)]:
            self._forget(old)

    def _forget(self, r: Replay) -> None:
        self.replays.pop(r.id, None)
        if self.by_batch.get(r.batch) is r:
            del self.by_batch[r.batch]
        self.store.doc_delete(REPLAY_DOC, r.id)

    # the view --------------------------------------------------------------------------------------
    def _context(self, dest_id: str, body: bytes | None, delivery: int, attempts: int) -> dict[str, Any]:
        """Where it goes and the request as sent (the signature is computed afresh at each attempt, with
        its timestamp; the secret is never shown)."""
        dest = self.webhooks.routes.destination(dest_id)
        view = self.webhooks.dest_view(dest_id, dest)
        headers = {"Content-Type": "application/json", "X-PayGate-Delivery": str(delivery)}
        if attempts > 0:
            headers["X-PayGate-Retry"] = str(attempts)
        signed = dest is not None and dest.secret is not None
        if signed:
            headers["X-PayGate-Signature"] = "t=<unix seconds>,v1=<HMAC-SHA256 of t.body> (computed at each attempt)"
        out = {**view, "signed": signed, "headers": headers}
        if body is not None:
            out["payload"] = orjson.loads(body) if body else None
        return out

    def _entries(self) -> list[dict[str, Any]]:
        queue = self.webhooks.queue
        out: list[dict[str, Any]] = []
        for d in queue.dead_letters():
            out.append(
                {
                    "id": f"dl_{d.id}",
                    "status": "exhausted",
                    **self._context(d.dest, d.body, d.id, d.attempts),
                    **letter_fields(d),
                }
            )
        for b in sorted(queue.batches.values(), key=lambda b: b.id):
            r = self.by_batch.get(b.id)
            if b.attempt == 0 and r is None:
                continue  # an ordinary delivery that has not failed: not a failure
            out.append(
                {
                    "id": r.id if r is not None else f"wb_{b.id}",
                    "status": "retrying" if b.attempt > 0 else "pending",
                    **self._context(b.dest, queue.body(b), b.id, b.attempt),
                    "eventCount": b.event_count,
                    "eventTypes": b.event_types,
                    "attempts": b.attempt,
                    "lastError": b.last_error,
                    "nextAttemptAt": iso_time(b.next_at),
                    "createdAt": iso_time(b.created),
                    **self._replay_fields(r),
                }
            )
        for r in sorted(self.replays.values(), key=lambda r: r.finished_at or 0):
            if r.status == "succeeded":
                out.append(
                    {
                        "id": r.id,
                        "status": "succeeded",
                        **self._context(r.dest, None, r.batch, 0),
                        "eventCount": r.event_count,
                        "eventTypes": r.event_types,
                        "createdAt": iso_time(r.created),
                        "succeededAt": iso_time(r.finished_at),
                        **self._replay_fields(r),
                    }
                )
        return out

    @staticmethod
    def _replay_fields(r: Replay | None) -> dict[str, Any]:
        if r is None:
            return {}
        return {"replayOf": f"dl_{r.dead_letter}", "replayedAt": iso_time(r.replayed_at), "maxRetries": r.max_retries}

    def view(self, status: str | None, limit: int) -> dict[str, Any]:
        entries = self._entries()
        summary = {s: sum(1 for e in entries if e["status"] == s) for s in STATUSES}
        chosen = [e for e in entries if status is None or e["status"] == status]
        return {
            "entries": chosen[:limit],
            "count": min(len(chosen), limit),
            "total": len(chosen),
            "summary": summary,
            "maxRetries": self.effective_max_retries,
            "maxAgeDays": self.max_age_days,
            "paused": self.webhooks.worker.paused,
        }

    # actions ---------------------------------------------------------------------------------------
    def _letter(self, entry_id: str) -> DeadLetter:
        """The dead letter `dl_<n>` names; a refusal that says why when it names something else."""
        r = self.replays.get(entry_id)
        queued = (
            entry_id.startswith("wb_") and entry_id[3:].isdigit() and int(entry_id[3:]) in self.webhooks.queue.batches
        )
        if queued or (r is not None and r.status == "pending"):
            raise Conflict(f"{entry_id} is in the delivery queue already (pending or retrying)")
        if r is not None:
            raise Conflict(f"{entry_id} was delivered (succeeded)")
        if entry_id.startswith("dl_") and entry_id[3:].isdigit():
            n = int(entry_id[3:])
            found = next((d for d in self.webhooks.queue.dead_letters() if d.id == n), None)
            if found is not None:
                return found
        raise NotFound(f"no webhook replay entry {entry_id[:40]!r}")

    def replay(self, actor: str, entry_id: str | None, status: str | None, max_retries: int | None) -> dict[str, Any]:
        if status is not None and status != "exhausted":
            raise Invalid(
                f'Invalid request: only exhausted entries can be replayed (status {status!r} is not "exhausted")'
            )
        letters = [self._letter(entry_id)] if entry_id else self.webhooks.queue.dead_letters()
        ready = [d for d in letters if self.webhooks.routes.destination(d.dest) is not None]
        batches = self.webhooks.queue.replay(ready, self.clock())
        self._track(ready, batches, max_retries)
        self.webhooks.worker.wake()
        result = {
            "replayed": len(ready),
            "events": sum(d.event_count for d in ready),
            "skipped": len(letters) - len(ready),  # their destination is gone: they stay
            "remaining": self.webhooks.queue.dead_count,
        }
        self.webhooks.events.publish("webhook.replayed", actor, **result, via="admin/webhook-replay")
        return {**result, "ids": [self.by_batch[b.id].id for b in batches], "maxRetries": self._limit(max_retries)}

    def _limit(self, max_retries: int | None) -> int:
        return self.effective_max_retries if max_retries is None else max_retries

    def purge(self, actor: str, entry_id: str | None, status: str | None) -> dict[str, Any]:
        if (entry_id is None) == (status is None):
            raise Invalid("Invalid request: give an id or a status to purge (not both)")
        if status in ("pending", "retrying"):
            raise Invalid(
                f"Invalid request: {status} entries are in the delivery queue; only exhausted and succeeded "
                "entries can be purged"
            )
        letters: list[DeadLetter] = []
        done: list[Replay] = []
        if entry_id is not None:
            r = self.replays.get(entry_id)
            if r is not None and r.status == "succeeded":
                done = [r]
            else:
                letters = [self._letter(entry_id)]
        elif status == "exhausted":
            letters = self.webhooks.queue.dead_letters()
        else:
            done = [r for r in self.replays.values() if r.status == "succeeded"]
        purged = self.webhooks.queue.delete_dead(letters) if letters else 0
        for r in done:
            self._forget(r)
        purged += len(done)
        self.webhooks.events.publish("webhook.replay_purged", actor, purged=purged, id=entry_id, status=status)
        return {"purged": purged, "remaining": self.webhooks.queue.dead_count}

    def tick(self, now: float) -> None:
        """Age-based expiry, checked at most once a minute (the dead-letter table is read to do it; a clock
        that went back checks at once)."""
        if self.max_age_days <= 0 or 0 <= now - self._last_expiry < EXPIRY_EVERY_SECONDS:
            return
        self._last_expiry = now
        cutoff = now - self.max_age_days * DAY
        old = [d for d in self.webhooks.queue.dead_letters() if d.failed_at < cutoff]
        if old:
            self.webhooks.queue.delete_dead(old)
        done = [r for r in self.replays.values() if r.status == "succeeded" and (r.finished_at or 0) < cutoff]
        for r in done:
            self._forget(r)
        if old or done:
            self.webhooks.events.publish(
                "webhook.replay_expired", "system", expired=len(old) + len(done), maxAgeDays=self.max_age_days
            )
