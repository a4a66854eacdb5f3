"""Scheduled reports (`/admin/scheduled-reports`, docs/scheduled-reports.md): usage, billing, compliance
and security reports built by the analytics reports (`costs`, `revenue`, `compliance`, `security`) for the
last complete UTC day, week or month, and POSTed signed like a webhook (X-PayGate-Signature with
`webhookSecret`, the webhook SSRF rules) to the schedule's URL or the main `webhookUrl`.

Each (schedule, period) is a store document, *claimed* before it is sent (`doc_create`; a retry claims it
again with a compare-and-set on `attempts`), so of the instances sharing a store exactly one delivers a
period, and a restart neither repeats a delivered period nor skips one that was due while it was down
(periods since the schedule's creation are caught up, oldest first, at most `MAX_CATCHUP` of them). A
failed delivery is retried `RETRY_SECONDS * attempts` later, at most `MAX_ATTEMPTS` times in all.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson

from paygate.config import Settings
from paygate.core.domain_errors import Invalid, NotFound
from paygate.core.values import iso_seconds
from paygate.events.hub import EventHub
from paygate.store.base import Store
from paygate.webhooks.report_periods import last_complete, next_start, period_start
from paygate.webhooks.sender import Outcome, Sender
from paygate.webhooks.ssrf import UnsafeUrl, check_url, shown

log = logging.getLogger("paygate.webhooks")
KIND, RUNS = "scheduled_reports", "scheduled_report_runs"
# type -> (analytics report, the filters it takes)
REPORTS: dict[str, tuple[str, frozenset[str]]] = {
    "usage": ("costs", frozenset({"namespace", "key"})),
    "billing": ("revenue", frozenset({"namespace", "key"})),
    "compliance": ("compliance", frozenset({"namespace", "group"})),
    "security": ("security", frozenset({"namespace", "group"})),
}
MAX_SCHEDULES = 50
MAX_CATCHUP = 10
MAX_ATTEMPTS = 3
MAX_RUNS = 50  # delivery records kept per schedule
RETRY_SECONDS = 60.0
RunReport = Callable[[str, dict[str, Any]], dict[str, Any]]  # (analytics report name, its params) -> answer


class ScheduledReports:
    def __init__(self, store: Store, events: EventHub, settings: Settings, run_report: RunReport) -> None:
        self.store = store
        self.events = events
        self.settings = settings  # read at each delivery: webhookUrl / webhookSecret follow a reload
        self.run_report = run_report
        self.tasks: set[asyncio.Task[None]] = set()
        self.delivered = 0  # /metrics
        self.failed = 0

    # --- schedules -------------------------------------------------------------------------------------
    def schedules(self) -> list[dict[str, Any]]:
        return sorted(self.store.doc_list(KIND), key=lambda d: str(d["createdAt"]))

    def find(self, sid: str) -> dict[str, Any]:
        doc = self.store.doc_get(KIND, sid)
        if doc is None:
            raise NotFound(f"scheduled report {sid!r} not found")
        return doc

    def listing(self, now: float) -> dict[str, Any]:
        rows = [self.view(d, now) for d in self.schedules()]
        return {"schedules": rows, "count": len(rows)}

    def view(self, doc: dict[str, Any], now: float, runs: int = 0) -> dict[str, Any]:
        mine = self._runs(doc["id"])
        last = mine[-1] if mine else None
        due = self._due(doc, now, mine)
        out = {k: v for k, v in doc.items() if k not in ("url", "since")}
        out["url"] = shown(doc["url"]) if doc.get("url") else None
        out["lastRun"] = _run_view(last) if last else None
        out["lastStatus"] = last["status"] if last else None
        # due now (the next tick sends it), else when the current period ends
        upcoming = now if due else next_start(doc["frequency"], period_start(doc["frequency"], now))
        out["nextDueAt"] = iso_seconds(upcoming) if doc.get("enabled", True) else None
        if runs:
            out["runs"] = [_run_view(r) for r in mine[-runs:]]
        return out

    def save(self, fields: dict[str, Any], actor: str, now: float) -> dict[str, Any]:
        """Create (no `id`) or change a schedule; checked whole first (400 changes nothing)."""
        sid = fields.pop("id", None)
        old = self.find(sid) if sid else None
        if old is None and len(self.store.doc_list(KIND)) >= MAX_SCHEDULES:
            raise Invalid(f"at most {MAX_SCHEDULES} scheduled reports")
        doc = {**(old or {}), **{k: v for k, v in fields.items() if v is not None}}
        for needed in ("name", "type", "frequency"):
            if not doc.get(needed):
                raise Invalid(f"{needed} is required")
        doc.setdefault("filters", {})
        doc.setdefault("enabled", True)
        doc.setdefault("timeoutSeconds", 10)
        _, allowed = REPORTS[doc["type"]]
        extra = sorted(k for k, v in doc["filters"].items() if v is not None and k not in allowed)
        if extra:
            raise Invalid(
                f"a {doc['type']} report filters by {' and '.join(sorted(allowed))} only (not {', '.join(extra)})"
            )
        doc["filters"] = {k: v for k, v in doc["filters"].items() if v is not None}
        if doc.get("url"):
            try:
                check_url(doc["url"], self.settings.webhook_allow_private, "url")
            except UnsafeUrl as exc:
                raise Invalid(str(exc)) from None
        elif not self.settings.webhook_url:
            raise Invalid("no url given and no webhookUrl configured: a report needs somewhere to go")
        if old is None:
            sid = "rpt_" + secrets.token_hex(8)
            doc.update(id=sid, createdAt=iso_seconds(now), createdBy=actor, since=now)
        elif doc["frequency"] != old["frequency"]:
            doc["since"] = now  # periods of the new length start now: no catch-up of the old ones
        doc["updatedAt"] = iso_seconds(now)
        self.store.doc_put(KIND, doc["id"], doc)
        kind = "scheduled_report.created" if old is None else "scheduled_report.updated"
        self.events.publish(kind, actor, id=doc["id"], name=doc["name"], type=doc["type"], frequency=doc["frequency"])
        return self.view(doc, now)

    def delete(self, sid: str, actor: str) -> dict[str, Any]:
        doc = self.find(sid)
        self.store.doc_delete(KIND, sid)
        for run in self._runs(sid):
            self.store.doc_delete(RUNS, _run_id(sid, run["periodStart"]))
        self.events.publish("scheduled_report.deleted", actor, id=sid, name=doc["name"])
        return {"deleted": sid}

    # --- periods and runs ------------------------------------------------------------------------------
    def _runs(self, sid: str) -> list[dict[str, Any]]:
        return sorted((r for r in self.store.doc_scan(RUNS) if r["scheduleId"] == sid), key=lambda r: r["periodStart"])

    def _due(self, doc: dict[str, Any], now: float, runs: list[dict[str, Any]]) -> list[float]:
        """Periods that have ended and were never claimed, oldest first (at most MAX_CATCHUP)."""
        if not doc.get("enabled", True):
            return []
        freq = doc["frequency"]
        claimed = {r["periodStart"] for r in runs}
        start = period_start(freq, float(doc["since"]))
        if runs:
            start = max(start, next_start(freq, runs[-1]["periodStart"]))
        last = last_complete(freq, now)
        out: list[float] = []
        while start <= last:
            if start not in claimed:
                out.append(start)
            start = next_start(freq, start)
        return out[-MAX_CATCHUP:]

    def tick(self, now: float) -> None:
        """About once a second: claim and send each due period, and retry failed ones when their time comes."""
        schedules = self.store.doc_scan(KIND)
        if not schedules:
            return
        by_schedule: dict[str, list[dict[str, Any]]] = {}
        for run in self.store.doc_scan(RUNS):
            by_schedule.setdefault(run["scheduleId"], []).append(run)
        for doc in schedules:
            runs = sorted(by_schedule.get(doc["id"], []), key=lambda r: r["periodStart"])
            claimed: list[dict[str, Any]] = []
            for start in self._due(doc, now, runs):
                end = next_start(doc["frequency"], start)
                claim = _claim(doc["id"], start, end, 1, now, doc, queued=len(claimed))
                if self.store.doc_create(RUNS, claim["id"], claim):
                    claimed.append(claim)
            if claimed:  # one after another, oldest first: a receiver sees a caught-up schedule's periods in order
                self._spawn(doc, *claimed)
            for run in runs[-MAX_CATCHUP:]:
                if run["status"] != "delivered" and run["attempts"] < MAX_ATTEMPTS and run["nextAttemptAt"] <= now:
                    attempt = run["attempts"] + 1
                    again = {**run, **_claim(doc["id"], run["periodStart"], run["periodEnd"], attempt, now, doc)}
                    # Compared on `state` (status and attempt), which every write changes: a peer's view that
                    # is a write behind (a claim it saw, since delivered) must not win the retry.
                    if self.store.doc_put_if(RUNS, run["id"], again, "state", _state(run)):
                        self._spawn(doc, again)
            for old in runs[:-MAX_RUNS]:  # delivery records are bounded; the newest says where to go on
                self.store.doc_delete(RUNS, old["id"])

    def _spawn(self, doc: dict[str, Any], *runs: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver_runs(dict(doc), runs))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver_runs(self, doc: dict[str, Any], runs: tuple[dict[str, Any], ...]) -> None:
        for run in runs:
            await self._deliver_run(doc, run)

    async def _deliver_run(self, doc: dict[str, Any], run: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            outcome = await self.send(doc, run["periodStart"], run["periodEnd"], run["id"])
        except Exception as exc:  # a report that cannot be built is a failed run, not a dead ticker
            log.exception("scheduled report %s: could not be generated", doc["id"])
            outcome = Outcome(0, f"{type(exc).__name__}: report not generated", 0.0)
        # On the ticker's clock (the claim's time plus what the delivery took), so retries and leases
        # are compared with the times the ticker is given.
        self._record(run, outcome, run["claimedAt"] + (time.monotonic() - started))

    def _record(self, run: dict[str, Any], outcome: Outcome, now: float) -> None:
        if self.store.doc_peek(KIND, run["scheduleId"]) is None:
            return  # deleted while it was being sent: no record to keep
        status = "delivered" if outcome.ok else "failed"
        run = {**run, "status": status, "state": f"{status}:{run['attempts']}", "statusCode": outcome.status or None}
        run.update(error=outcome.error, finishedAt=now, nextAttemptAt=now + RETRY_SECONDS * run["attempts"])
        self.store.doc_put(RUNS, run["id"], run)
        if outcome.ok:
            self.delivered += 1
        else:
            self.failed += 1
            log.warning("scheduled report %s (%s): delivery failed: %s", run["scheduleId"], run["id"], outcome.error)

    # --- generating and sending ------------------------------------------------------------------------
    def generate(self, doc: dict[str, Any], start: float, end: float, run_id: str, now: float) -> dict[str, Any]:
        """The webhook body: the analytics report for [start, end) with the schedule's filters."""
        report, _ = REPORTS[doc["type"]]
        params = {**doc["filters"], "since": iso_seconds(start), "until": iso_seconds(end - 1)}
        data = self.run_report(report, params)
        return {
            "type": "report.generated",
            "id": run_id,
            "schedule": {"id": doc["id"], "name": doc["name"]},
            "report": {
                "type": doc["type"],
                "frequency": doc["frequency"],
                "periodStart": iso_seconds(start),
                "periodEnd": iso_seconds(end),
                "filters": doc["filters"],
                "data": data,
            },
            "generatedAt": iso_seconds(now),
        }

    async def send(self, doc: dict[str, Any], start: float, end: float, run_id: str) -> Outcome:
        url = doc.get("url") or self.settings.webhook_url
        if not url:
            return Outcome(0, "no destination: the schedule has no url and webhookUrl is not set", 0.0)
        body = orjson.dumps(self.generate(doc, start, end, run_id, time.time()))
        sender = Sender(float(doc.get("timeoutSeconds") or 10), self.settings.webhook_allow_private)
        try:
            outcome = await sender.post(url, body, secret=self.settings.webhook_secret)
        finally:
            await sender.close()
        self.events.publish(
            "scheduled_report.delivered" if outcome.ok else "scheduled_report.failed",
            "system",
            id=doc["id"],
            type=doc["type"],
            periodStart=iso_seconds(start),
            periodEnd=iso_seconds(end),
            url=shown(url),
            statusCode=outcome.status or None,
            error=outcome.error,
        )
        return outcome

    async def generate_now(self, sid: str, at: float | None, now: float) -> dict[str, Any]:
        """POST action generate: the period containing `at` (default: the last complete one), sent now.
        On demand: it is not the scheduled run of that period (which is still sent when due)."""
        doc = self.find(sid)
        freq = doc["frequency"]
        start = period_start(freq, at) if at is not None else last_complete(freq, now)
        end = next_start(freq, start)
        run_id = f"{_run_id(sid, start)}:manual"
        outcome = await self.send(doc, start, end, run_id)
        if outcome.ok:
            self.delivered += 1
        else:
            self.failed += 1
        return {
            "id": sid,
            "periodStart": iso_seconds(start),
            "periodEnd": iso_seconds(end),
            "delivered": outcome.ok,
            "statusCode": outcome.status or None,
            "error": outcome.error,
            "ms": outcome.ms,
        }

    async def stop(self) -> None:
        """At shutdown: deliveries in flight finish (each is bounded by its timeout)."""
        if self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


def _state(run: dict[str, Any]) -> str:
    """What a retry's claim compares: the status and attempt of the record as this instance saw it."""
    return str(run.get("state") or f"{run['status']}:{run['attempts']}")


def _run_id(sid: str, start: float) -> str:
    return f"{sid}:{int(start)}"


def _claim(
    sid: str, start: float, end: float, attempts: int, now: float, doc: dict[str, Any], queued: int = 0
) -> dict[str, Any]:
    # A crashed sender's claim expires; a claim waiting behind `queued` others of the same catch-up (sent one
    # after another) gets their time too, so no peer takes it over while it waits its turn.
    lease = (float(doc.get("timeoutSeconds") or 10) + RETRY_SECONDS) * (queued + 1)
    return {
        "id": _run_id(sid, start),
        "scheduleId": sid,
        "periodStart": start,
        "periodEnd": end,
        "status": "pending",
        "state": f"pending:{attempts}",
        "attempts": attempts,
        "claimedAt": now,
        "nextAttemptAt": now + lease,
    }


def _run_view(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "periodStart": iso_seconds(run["periodStart"]),
        "periodEnd": iso_seconds(run["periodEnd"]),
        "status": run["status"],
        "attempts": run["attempts"],
        "statusCode": run.get("statusCode"),
        "error": run.get("error"),
        "finishedAt": iso_seconds(run["finishedAt"]) if run.get("finishedAt") else None,
    }
