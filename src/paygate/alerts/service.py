"""Alert rules: thresholds on a key's spending, credits, quota, expiry and rate-limit denials.

The rules and their pure checks are in alerts/rules.py. `AlertService` is a deferred subscriber of the event bus: for
every key named by a `gate.allow` / `gate.deny` event it gathers the key's facts and runs the rules,
after the tool call's answer is on its way. A rule that fires queues an alert (read and cleared by
GET /alerts) and publishes `alert.fired` on the bus (audit log, webhooks, admin SSE).

Rules persist as one store document (kind `alerts`, id `rules`); when none was ever set through
the API, the config file's `alertRules` apply. Cooldowns and the rate-limit denial windows live in
memory only: a restart may let a rule fire once more for a key.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from paygate.alerts.rules import CHECKS, KeyFacts, Number, Rule, RuleError, check_rules, rules_from_doc
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.events.hub import Event, EventHub
from paygate.store.base import Store

log = logging.getLogger("paygate.alerts")

ALERT_DOC = "alerts"
RULES_ID = "rules"
MAX_QUEUE = 1000  # pending alerts kept for GET /alerts; the oldest is dropped past this
SPIKE_WINDOW = 300.0  # rate_limit_spike counts denials in the last 5 minutes
RATE_REASONS = frozenset({"rate_limited", "tool_rate_limited"})
GATE_EVENTS = frozenset({"gate.allow", "gate.deny"})
OWED_EVENT = "stripe.credits_owed"  # payments/stripe_ledger.py: queued as a `credits_owed` alert, no rule needed
SWEEP_EVERY = 60.0  # seconds between sweeps of cooldowns and denial windows
MAX_DENIALS_KEPT = 10_000  # per key: a count past this is already a spike for any sensible threshold


# --- alerts and the queue ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    type: str
    timestamp: float
    key_prefix: str
    key_masked: str
    key_name: str
    message: str
    threshold: Number
    value: Number
    metadata: dict[str, Any]

    def json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "timestamp": iso_time(self.timestamp),
            "keyPrefix": self.key_prefix,
            "keyMasked": self.key_masked,
            "keyName": self.key_name,
            "message": self.message,
            "threshold": self.threshold,
            "currentValue": self.value,
            "metadata": self.metadata,
        }


class AlertQueue:
    """Pending alerts, oldest first, at most `limit`; the oldest go first and are counted as dropped."""

    def __init__(self, limit: int = MAX_QUEUE) -> None:
        self._alerts: deque[Alert] = deque(maxlen=limit)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._alerts)

    def push(self, alert: Alert) -> None:
        if len(self._alerts) == self._alerts.maxlen:
            self.dropped += 1
        self._alerts.append(alert)

    def drain(self) -> tuple[list[Alert], int]:
        """Everything pending and the count dropped since the last drain; both reset."""
        alerts, dropped = list(self._alerts), self.dropped
        self._alerts.clear()
        self.dropped = 0
        return alerts, dropped


# --- the service ---------------------------------------------------------------------------------

DailyCalls = Callable[[KeyRecord, float], tuple[int, int]]  # (calls today, daily call limit; 0: none)


def _no_quota(_: KeyRecord, __: float) -> tuple[int, int]:
    return 0, 0


class AlertService:
    def __init__(
        self,
        store: Store,
        events: EventHub,
        defaults: Iterable[Rule] = (),
        *,
        daily_calls: DailyCalls = _no_quota,
        clock: Callable[[], float] = time.time,
        queue_limit: int = MAX_QUEUE,
    ) -> None:
        self.store = store
        self.events = events
        self.defaults = list(defaults)
        self.daily_calls = daily_calls
        self.clock = clock
        self.queue = AlertQueue(queue_limit)
        self.rules: list[Rule] = []
        self.source = "none"  # api | config | none: where the current rules came from
        self._last_fired: dict[tuple[str, Number, str], float] = {}  # (type, threshold, key hash) -> when
        self._denials: dict[str, deque[float]] = {}  # key hash -> rate-limit denial times, oldest first
        self._last_sweep = 0.0
        self.reload()

    def reload(self) -> None:
        """The stored rules, else the config file's (also after a backup restore)."""
        doc = self.store.doc_get(ALERT_DOC, RULES_ID)
        if doc is not None:
            try:
                self.rules, self.source = rules_from_doc(doc), "api"
                return
            except RuleError as exc:  # only a hand-edited backup gets here: say so, use the config's
                log.error("stored alert rules ignored (%s); using the config file's", exc)
        self.rules, self.source = list(self.defaults), "config" if self.defaults else "none"

    def replace_defaults(self, rules: Sequence[Rule]) -> Callable[[], str | None]:
        """A hot reload's `alertRules` (checked by the caller): the commit that makes them the defaults,
        in force unless rules were set through the API, which stay (the commit's warning says so)."""
        new = list(rules)

        def commit() -> str | None:
            self.defaults = new
            if self.source == "api":
                return "alertRules: the rules set through POST /alerts stay in force over the file's"
            self.rules, self.source = list(new), "config" if new else "none"
            return None

        return commit

    def configure(self, rules: Sequence[Rule]) -> list[Rule]:
        """Replace the rule set (checked first: a bad set changes nothing) and store it."""
        check_rules(rules)
        self.store.doc_put(
            ALERT_DOC, RULES_ID, {"rules": [r.json() for r in rules], "updatedAt": iso_time(self.clock())}
        )
        self.rules, self.source = list(rules), "api"
        return self.rules

    def set_rules(self, rules: Sequence[Rule], actor: str) -> list[Rule]:
        """`configure` for an admin, who is named in `admin.alerts_configured`."""
        try:
            self.configure(rules)
        except RuleError as exc:
            raise RuleError(f"Invalid request: {exc}") from exc
        self.events.publish(
            "admin.alerts_configured", actor, ruleCount=len(rules), types=sorted({rule.type for rule in rules})
        )
        return self.rules

    def on_event(self, event: Event) -> None:
        """Inline subscriber: a restore may have replaced the stored rules."""
        if event.type == "backup.restored":
            self.reload()

    def on_batch(self, batch: Sequence[Event]) -> None:
        """Deferred subscriber: count rate-limit denials, then check each key the batch names, once.
        A refund or dispute that left credits owed (`stripe.credits_owed`) is an alert of its own, with
        no rule to set: money is owed (docs/payments.md)."""
        for event in batch:
            if event.type == OWED_EVENT:
                self._owed(event)
        if not self.rules:
            return
        keys: dict[str, None] = {}
        track_spikes = any(r.type == "rate_limit_spike" for r in self.rules)
        for event in batch:
            if event.type not in GATE_EVENTS or event.key_hash is None:
                continue
            if track_spikes and event.type == "gate.deny" and event.data.get("reason") in RATE_REASONS:
                self._record_denial(event.key_hash, event.timestamp)
            keys[event.key_hash] = None
        if keys:
            now = self.clock()
            for key_hash in keys:
                self.evaluate(key_hash, now)

    def _owed(self, event: Event) -> None:
        data = event.data
        masked = str(data.get("keyMasked", ""))
        alert = Alert(
            "credits_owed",
            event.timestamp,
            masked.split("…")[0] + "...",
            masked,
            "",
            f"a Stripe {data.get('cause')} could not take back {data.get('creditsOwed')} credits (already spent): "
            f"{data.get('totalOwed')} owed in all",
            0,
            int(data.get("totalOwed") or 0),
            {"cause": data.get("cause"), "eventId": data.get("eventId"), "payment": data.get("payment")},
        )
        self.queue.push(alert)

    def evaluate(self, key_hash: str, now: float) -> list[Alert]:
        """Run every rule for one key; queue and publish what fires. Returns the alerts fired."""
        record = self.store.get_key(key_hash)
        if record is None or not record.active:
            return []
        facts = self._facts(record, now)
        fired: list[Alert] = []
        for rule in self.rules:
            slot = (rule.type, rule.threshold, key_hash)
            last = self._last_fired.get(slot)
            if last is not None and now - last < rule.cooldown_seconds:
                continue
            finding = CHECKS[rule.type](facts, rule.threshold)
            if finding is None:
                continue
            self._last_fired[slot] = now
            alert = Alert(
                rule.type,
                now,
                f"{record.prefix}...",
                record.masked,
                record.name,
                finding.message,
                rule.threshold,
                finding.value,
                finding.metadata,
            )
            self.queue.push(alert)
            fired.append(alert)
            # key_hash routes the event to per-key webhook filters; it is never written out.
            self.events.emit(
                "alert.fired",
                "system",
                {
                    "alertType": alert.type,
                    "keyPrefix": alert.key_prefix,
                    "keyMasked": alert.key_masked,
                    "keyName": alert.key_name,
                    "message": alert.message,
                    "value": alert.value,
                    "threshold": alert.threshold,
                    "metadata": alert.metadata,
                },
                key_hash=key_hash,
                timestamp=now,
            )
        return fired

    def drain(self) -> tuple[list[Alert], int]:
        return self.queue.drain()

    def take_pending(self) -> tuple[list[Alert], int]:
        """What GET /alerts hands out: the bus is flushed first, so alerts from calls answered just now are
        evaluated before the queue is read (and cleared)."""
        self.events.flush()
        return self.queue.drain()

    def tick(self, now: float) -> None:
        """Ticker (every second): a sweep at most every SWEEP_EVERY seconds."""
        if now - self._last_sweep >= SWEEP_EVERY:
            self._last_sweep = now
            self.sweep(now)

    def sweep(self, now: float) -> None:
        """Ticker: forget cooldowns that ended and denials out of the window (bounded memory)."""
        longest = max((r.cooldown_seconds for r in self.rules), default=0)
        self._last_fired = {s: t for s, t in self._last_fired.items() if now - t < longest}
        for key_hash in list(self._denials):
            self._window(key_hash, now)

    def _facts(self, record: KeyRecord, now: float) -> KeyFacts:
        types = {r.type for r in self.rules}
        calls, limit = self.daily_calls(record, now) if "quota_warning" in types else (0, 0)
        denials = self._window(record.key_hash, now) if "rate_limit_spike" in types else 0
        return KeyFacts(record.name, record.credits, record.total_spent, record.expires_at, now, calls, limit, denials)

    def _record_denial(self, key_hash: str, at: float) -> None:
        times = self._denials.get(key_hash)
        if times is None:
            times = self._denials[key_hash] = deque(maxlen=MAX_DENIALS_KEPT)
        times.append(at)

    def _window(self, key_hash: str, now: float) -> int:
        """Denials for the key within SPIKE_WINDOW of `now` (older ones are dropped)."""
        times = self._denials.get(key_hash)
        if times is None:
            return 0
        while times and now - times[0] > SPIKE_WINDOW:
            times.popleft()
        if not times:
            del self._denials[key_hash]
            return 0
        return len(times)
