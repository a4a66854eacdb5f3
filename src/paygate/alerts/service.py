"""Alert rules: thresholds on a key's spending, credits, quota, expiry and rate-limit denials.

Each rule type is a small pure check, `(KeyFacts, threshold) -> Finding | None`, so the arithmetic
is tested apart from everything else. `AlertService` is a deferred subscriber of the event bus: for
every key named by a `gate.allow` / `gate.deny` event it gathers the key's facts and runs the rules,
after the tool call's answer is on its way. A rule that fires queues an alert (read and cleared by
GET /alerts) and publishes `alert.fired` on the bus (audit log, webhooks, admin SSE).

Rules persist as one store document (kind `alerts`, id `rules`); when none was ever set through
the API, the config file's `alertRules` apply. Cooldowns and the rate-limit denial windows live in
memory only: a restart may let a rule fire once more for a key.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from paygate.config_events import ALERT_TYPES, AlertRuleConfig
from paygate.core.domain_errors import Invalid
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.events.hub import Event, EventHub
from paygate.store.base import Store

log = logging.getLogger("paygate.alerts")

ALERT_DOC = "alerts"
RULES_ID = "rules"
DEFAULT_COOLDOWN = 300
MAX_COOLDOWN = 86_400 * 30
MAX_RULES = 50
MAX_QUEUE = 1000  # pending alerts kept for GET /alerts; the oldest is dropped past this
MAX_THRESHOLD = 10**12  # far past any credit balance or expiry horizon; keeps numbers finite
PERCENT_TYPES = frozenset({"spending_threshold", "quota_warning"})
SPIKE_WINDOW = 300.0  # rate_limit_spike counts denials in the last 5 minutes
RATE_REASONS = frozenset({"rate_limited", "tool_rate_limited"})
GATE_EVENTS = frozenset({"gate.allow", "gate.deny"})
SWEEP_EVERY = 60.0  # seconds between sweeps of cooldowns and denial windows
MAX_DENIALS_KEPT = 10_000  # per key: a count past this is already a spike for any sensible threshold

Number = int | float


class RuleError(Invalid, ValueError):
    """A rule set that cannot be stored; the message names what is wrong (a config file's bad rules
    stop the start; the API's are a 400 that changes nothing)."""


@dataclass(frozen=True, slots=True)
class Rule:
    type: str
    threshold: Number
    cooldown_seconds: int = DEFAULT_COOLDOWN

    def json(self) -> dict[str, Any]:
        return {"type": self.type, "threshold": self.threshold, "cooldownSeconds": self.cooldown_seconds}


def check_rules(rules: Sequence[Rule]) -> None:
    """Limits no field type says: the rule count, percentages, finite thresholds, no duplicates."""
    if len(rules) > MAX_RULES:
        raise RuleError(f"at most {MAX_RULES} rules")
    seen: set[tuple[str, Number]] = set()
    for i, rule in enumerate(rules):
        where = f"rules.{i}"
        if rule.type not in ALERT_TYPES:
            raise RuleError(f"{where}.type: must be one of {', '.join(ALERT_TYPES)}")
        if isinstance(rule.threshold, bool) or not isinstance(rule.threshold, int | float):
            raise RuleError(f"{where}.threshold: must be a number")
        if not math.isfinite(rule.threshold) or rule.threshold < 0 or rule.threshold > MAX_THRESHOLD:
            raise RuleError(f"{where}.threshold: must be between 0 and {MAX_THRESHOLD}")
        if rule.type in PERCENT_TYPES and rule.threshold > 100:
            raise RuleError(f"{where}.threshold: {rule.type} is a percentage (0-100)")
        if (
            isinstance(rule.cooldown_seconds, bool)
            or not isinstance(rule.cooldown_seconds, int)
            or not 0 <= rule.cooldown_seconds <= MAX_COOLDOWN
        ):
            raise RuleError(f"{where}.cooldownSeconds: must be an integer between 0 and {MAX_COOLDOWN}")
        if (rule.type, rule.threshold) in seen:
            raise RuleError(f"{where}: duplicate of an earlier {rule.type} rule with threshold {rule.threshold}")
        seen.add((rule.type, rule.threshold))


def rules_from_config(configs: Iterable[AlertRuleConfig]) -> list[Rule]:
    """`alertRules` from the settings, checked like the API's; 80.0 from a file reads back as 80."""
    rules = [
        Rule(c.type, int(c.threshold) if float(c.threshold).is_integer() else c.threshold, c.cooldown_seconds)
        for c in configs
    ]
    check_rules(rules)
    return rules


def rules_from_doc(doc: dict[str, Any]) -> list[Rule]:
    """The rules a stored document holds (it may come from a restored backup: checked again)."""
    raw = doc.get("rules")
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise RuleError("rules must be a list of objects")
    rules = [Rule(r.get("type"), r.get("threshold"), r.get("cooldownSeconds", DEFAULT_COOLDOWN)) for r in raw]
    check_rules(rules)
    return rules


# --- the checks (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What the rules read about one key at one moment."""

    name: str
    credits: int
    total_spent: int
    expires_at: float | None
    now: float
    daily_calls: int = 0
    daily_call_limit: int = 0  # 0: no daily call quota
    rate_denials: int = 0  # rate-limit denials in the last SPIKE_WINDOW seconds


@dataclass(frozen=True, slots=True)
class Finding:
    value: Number
    message: str
    metadata: dict[str, Any] = field(default_factory=dict)


def spending_threshold(f: KeyFacts, threshold: Number) -> Finding | None:
    """Spent at least `threshold` percent of the initial credits (credits + totalSpent)."""
    budget = f.credits + f.total_spent
    if budget <= 0:
        return None
    percent = f.total_spent * 100 / budget
    if percent < threshold:
        return None
    return Finding(
        round(percent, 1),
        f'Key "{f.name}" has spent {percent:.0f}% of its credits ({f.total_spent}/{budget})',
        {"credits": f.credits, "totalSpent": f.total_spent, "totalBudget": budget},
    )


def credits_low(f: KeyFacts, threshold: Number) -> Finding | None:
    """Remaining credits below `threshold`."""
    if f.credits >= threshold:
        return None
    return Finding(
        f.credits,
        f'Key "{f.name}" has only {f.credits} credits remaining (threshold: {threshold})',
        {"credits": f.credits},
    )


def quota_warning(f: KeyFacts, threshold: Number) -> Finding | None:
    """Today's calls at least `threshold` percent of the daily call quota (none: never)."""
    if f.daily_call_limit <= 0:
        return None
    percent = f.daily_calls * 100 / f.daily_call_limit
    if percent < threshold:
        return None
    return Finding(
        round(percent, 1),
        f'Key "{f.name}" daily call quota at {percent:.0f}% ({f.daily_calls}/{f.daily_call_limit})',
        {"quotaType": "dailyCalls", "used": f.daily_calls, "limit": f.daily_call_limit},
    )


def key_expiry_soon(f: KeyFacts, threshold: Number) -> Finding | None:
    """Expires within `threshold` seconds (and has not expired yet)."""
    if f.expires_at is None:
        return None
    remaining = f.expires_at - f.now
    if remaining <= 0 or remaining > threshold:
        return None
    seconds = round(remaining)
    return Finding(
        seconds,
        f'Key "{f.name}" expires in {seconds} seconds ({iso_time(f.expires_at)})',
        {"expiresAt": iso_time(f.expires_at), "remainingSeconds": seconds},
    )


def rate_limit_spike(f: KeyFacts, threshold: Number) -> Finding | None:
    """At least `threshold` rate-limit denials in 5 minutes (and at least one: a spike needs denials)."""
    if f.rate_denials == 0 or f.rate_denials < threshold:
        return None
    return Finding(
        f.rate_denials,
        f'Key "{f.name}" hit {f.rate_denials} rate limit denials in 5 minutes (threshold: {threshold})',
        {"denialCount": f.rate_denials, "windowMinutes": 5},
    )


Check = Callable[[KeyFacts, Number], Finding | None]
CHECKS: dict[str, Check] = {
    "spending_threshold": spending_threshold,
    "credits_low": credits_low,
    "quota_warning": quota_warning,
    "key_expiry_soon": key_expiry_soon,
    "rate_limit_spike": rate_limit_spike,
}
assert set(CHECKS) == set(ALERT_TYPES)


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
        """Deferred subscriber: count rate-limit denials, then check each key the batch names, once."""
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
