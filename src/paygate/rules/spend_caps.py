"""Spend caps (GET/POST /admin/spend-caps, config `spendCaps`; docs/money-rules.md#spend-caps).

Server-wide daily credit and call caps, per-key hourly credit and call caps, checked by the gate
(`core/gate.check_spend_caps`) on the counts kept here. The gate reads them and `BillingService.admit`
counts the call in the same event-loop step as the charge (no `await` in between), so concurrent calls on
one instance never overshoot a cap. On a Redis fleet each instance counts its own calls on top of what the
shared usage log held when it started (or when caps were switched on): see the docs for the bound.

`breachAction: suspend`: a key refused by one of its own hourly caps is suspended (the keys service's
suspend, audited as `key.suspended` by the actor `spend-caps`), and resumed by a ticker
`autoResumeAfterSeconds` later (0: an admin resumes it) unless an admin resumed or re-suspended it meanwhile.
The suspension's reason marks it as the caps' own, so a restart picks the pending resumes up again.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from paygate.billing.facts import GateFacts
from paygate.core import spend_caps
from paygate.core.domain_errors import Invalid
from paygate.core.gate import Denial
from paygate.core.records import KeyRecord
from paygate.core.spend_caps import CapFacts, CapLimits, day_start, hour_start
from paygate.core.values import iso_seconds
from paygate.events.hub import EventHub
from paygate.keys.service import KeyConflict, KeyService
from paygate.store.base import Store
from paygate.store.shared import redis_store

log = logging.getLogger("paygate.rules")
META_KEY = "rules.spend_caps"  # what an admin set: it wins over the config file
ACTOR = "spend-caps"
SUSPEND_PREFIX = "spend_cap: "  # the suspension reason of a key the caps suspended
BREACH_ACTIONS = ("deny", "suspend")
LIMIT_FIELDS = ("serverDailyCreditCap", "serverDailyCallCap", "hourlyCallLimit", "hourlyCreditLimit")
FIELDS = (*LIMIT_FIELDS, "breachAction", "autoResumeAfterSeconds")
MAX_CAP = 1_000_000_000
MAX_RESUME = 365 * 86_400
RELOAD_SECONDS = 5.0  # how soon an instance of a fleet follows a change made on another


class SpendCaps:
    """The caps' settings, today's and this hour's counts, and the keys the caps suspended."""

    def __init__(self, store: Store, events: EventHub, keys: KeyService, facts: GateFacts, defaults: dict[str, Any]):
        self.store = store
        self.events = events
        self.keys = keys
        self.gate_facts = facts
        self.defaults = {**_DEFAULTS, **defaults}
        self.config: dict[str, Any] = dict(self.defaults)
        self.limits = CapLimits()
        self._day = 0.0  # start of the UTC day the server counts are for
        self._day_calls = 0
        self._day_credits = 0
        self._hours: dict[str, tuple[float, int, int]] = {}  # key hash -> (hour start, calls, credits)
        self._suspended: dict[str, float] = {}  # key hash -> when the caps suspended it
        self._seen: str | None = None
        self._last_reload = 0.0
        self.denied: dict[str, int] = dict.fromkeys((*spend_caps.SERVER_CAPS, *spend_caps.KEY_CAPS), 0)
        self.suspensions = 0
        self.resumes = 0

    # --- settings -----------------------------------------------------------------------------------
    def load(self, now: float) -> None:
        """At start (and from a fleet's peers): the admin's settings over the config file's, the counts
        rebuilt from the usage log, the keys the caps suspended found again."""
        raw = self._seen = self.store.get_meta(META_KEY)
        doc = dict(self.defaults)
        if raw:
            try:
                doc.update(_checked(orjson.loads(raw)))
            except (Invalid, orjson.JSONDecodeError, TypeError) as exc:  # never a crash at start: the file's values
                log.error("spend caps: the stored settings are unreadable (%s); using the config file's", exc)
        self._apply(doc, now)
        self._suspended = {
            k.key_hash: float(k.extra.get("suspendedAt") or now)
            for k in self.store.list_keys()
            if k.suspended and str(k.extra.get("suspendReason") or "").startswith(SUSPEND_PREFIX)
        }

    def _apply(self, doc: dict[str, Any], now: float) -> None:
        was = self.limits.any
        self.config = doc
        self.limits = CapLimits(
            doc["serverDailyCreditCap"], doc["serverDailyCallCap"], doc["hourlyCallLimit"], doc["hourlyCreditLimit"]
        )
        if self.limits.any and not was:
            self.rebuild(now)  # counts were not kept while no cap was set: recount them
        # The gate reads the caps only while one is set: with none, the hot path does not look here at all.
        self.gate_facts.caps = self if self.limits.any else None

    def configure(self, changes: dict[str, Any], actor: str, now: float) -> dict[str, Any]:
        """Apply an admin's changes (validated whole before anything changes), keep them, announce them."""
        if not changes:
            raise Invalid(f"Nothing to change: give any of {', '.join(FIELDS)}")
        checked = _checked(changes)
        doc = {**self.config, **checked}
        raw = orjson.dumps(doc).decode()
        self.store.set_meta(META_KEY, raw)
        self._seen = raw
        self._apply(doc, now)
        self.events.publish("spend_caps.updated", actor, changed=sorted(checked), **doc)
        return self.view(now)

    def reload(self, now: float) -> None:
        """A ticker on a fleet: follow another instance's change (a cheap read when there was none)."""
        if now - self._last_reload < RELOAD_SECONDS:
            return
        self._last_reload = now
        if self.store.get_meta(META_KEY) != self._seen:
            self.load(now)

    # --- counts (the gate's side: called on the event loop, in the step of the charge) -----------------
    def facts(self, key_hash: str, now: float) -> CapFacts | None:
        self._roll(now)
        hour = self._hours.get(key_hash)
        calls, credits = (hour[1], hour[2]) if hour is not None and hour[0] == hour_start(now) else (0, 0)
        return CapFacts(self.limits, self._day_calls, self._day_credits, calls, credits)

    def add(self, key_hash: str, calls: int, credits: int, now: float) -> None:
        self._roll(now)
        self._day_calls += calls
        self._day_credits += credits
        start = hour_start(now)
        hour = self._hours.get(key_hash)
        if hour is None or hour[0] != start:
            hour = (start, 0, 0)
        self._hours[key_hash] = (start, hour[1] + calls, hour[2] + credits)

    def remove(self, key_hash: str, calls: int, credits: int, now: float) -> None:
        """A refunded call is not spent: taken back from the counts it is still in (never below zero)."""
        self._roll(now)
        self._day_calls = max(self._day_calls - calls, 0)
        self._day_credits = max(self._day_credits - credits, 0)
        hour = self._hours.get(key_hash)
        if hour is not None and hour[0] == hour_start(now):
            self._hours[key_hash] = (hour[0], max(hour[1] - calls, 0), max(hour[2] - credits, 0))

    def on_rekey(self, old_hash: str, new_hash: str) -> None:
        """A rotated key keeps its hour's counts (a rotation must not be a way around its hourly caps) and a
        pending auto-resume."""
        hour = self._hours.pop(old_hash, None)
        if hour is not None:
            self._hours[new_hash] = hour
        since = self._suspended.pop(old_hash, None)
        if since is not None:
            self._suspended[new_hash] = since

    def _roll(self, now: float) -> None:
        day = day_start(now)
        if day != self._day:
            self._day, self._day_calls, self._day_credits = day, 0, 0

    def rebuild(self, now: float) -> None:
        """Today's and this hour's admitted calls, recounted from the usage log (refunds taken back)."""
        self._day, self._day_calls, self._day_credits = day_start(now), 0, 0
        for calls, credits in self.store.usage_sums(day_start(now)).values():
            self._day_calls += calls
            self._day_credits += credits
        start = hour_start(now)
        self._hours = {h: (start, c, k) for h, (c, k) in self.store.usage_sums(start).items()}

    # --- breaches -----------------------------------------------------------------------------------
    def on_denial(self, key: KeyRecord, denial: Denial) -> None:
        """BillingService.after_denial: count the breach; suspend the key for its own hourly cap when
        `breachAction` is suspend (the reference suspends for those only: a server-wide cap refuses every
        key alike)."""
        if denial.reason != spend_caps.CAP_REASON:
            return
        cap = spend_caps.cap_of(denial.detail)
        self.denied[cap] = self.denied.get(cap, 0) + 1
        if self.config["breachAction"] != "suspend" or cap not in spend_caps.KEY_CAPS or key.suspended:
            return
        current = self.store.get_key(key.key_hash)
        if current is None or current.suspended or not current.active:
            return
        try:
            self.keys.suspend(current, f"{SUSPEND_PREFIX}{denial.detail}", ACTOR, cap=cap)
        except KeyConflict:  # suspended or revoked meanwhile: nothing to do
            return
        self._suspended[key.key_hash] = self._clock(current)
        self.suspensions += 1

    def _clock(self, key: KeyRecord) -> float:
        fresh = self.store.get_key(key.key_hash)
        return float((fresh.extra if fresh else key.extra).get("suspendedAt") or 0.0)

    def tick(self, now: float) -> None:
        """Resume the keys the caps suspended once `autoResumeAfterSeconds` have passed (0: never)."""
        wait = self.config["autoResumeAfterSeconds"]
        if not self._suspended or not wait:
            return
        for key_hash, since in list(self._suspended.items()):
            if now - since < wait:
                continue
            del self._suspended[key_hash]
            key = self.store.get_key(key_hash)
            reason = str(key.extra.get("suspendReason") or "") if key is not None else ""
            if key is None or not key.suspended or not reason.startswith(SUSPEND_PREFIX):
                continue  # an admin resumed it, or suspended it again for a reason of their own
            try:
                self.keys.resume(key, ACTOR, auto=True, suspendedForSeconds=int(now - since))
                self.resumes += 1
            except KeyConflict:
                continue

    # --- the admin view -----------------------------------------------------------------------------
    def view(self, now: float) -> dict[str, Any]:
        self._roll(now)
        wait = self.config["autoResumeAfterSeconds"]
        suspended = []
        for key_hash, since in sorted(self._suspended.items(), key=lambda kv: kv[1]):
            key = self.store.get_key(key_hash)
            suspended.append(
                {
                    "key": key.masked if key else None,
                    "name": key.name if key else None,
                    "suspendedAt": iso_seconds(since),
                    "autoResumeIn": max(0, int(since + wait - now + 0.999)) if wait else None,
                }
            )
        lim = self.limits
        return {
            "enabled": lim.any,
            **self.config,
            "scope": "instance" if redis_store(self.store) is not None else "server",
            "serverStats": {
                "day": iso_seconds(self._day)[:10],
                "dailyCalls": self._day_calls,
                "dailyCredits": self._day_credits,
                "dailyCallCap": lim.server_daily_calls,
                "dailyCreditCap": lim.server_daily_credits,
                "resetsAt": iso_seconds(self._day + spend_caps.DAY),
            },
            "keysThisHour": sum(1 for h in self._hours.values() if h[0] == hour_start(now)),
            "suspendedCount": len(suspended),
            "suspended": suspended,
            "denied": {**self.denied, "total": sum(self.denied.values())},
            "suspensions": self.suspensions,
            "autoResumes": self.resumes,
        }


_DEFAULTS: dict[str, Any] = {
    "serverDailyCreditCap": 0,
    "serverDailyCallCap": 0,
    "hourlyCallLimit": 0,
    "hourlyCreditLimit": 0,
    "breachAction": "deny",
    "autoResumeAfterSeconds": 0,
}


def _checked(doc: Any) -> dict[str, Any]:
    """The fields of `doc`, each checked (a clear message naming the first bad one); unknown fields refused."""
    if not isinstance(doc, dict):
        raise Invalid("spend caps must be an object")
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise Invalid(f"Unknown field(s): {', '.join(unknown)} (allowed: {', '.join(FIELDS)})")
    out: dict[str, Any] = {}
    for name, value in doc.items():
        if name == "breachAction":
            if value not in BREACH_ACTIONS:
                raise Invalid("breachAction must be deny or suspend")
        else:
            top = MAX_RESUME if name == "autoResumeAfterSeconds" else MAX_CAP
            if type(value) is not int or not 0 <= value <= top:
                raise Invalid(f"{name} must be an integer from 0 to {top} (0: none)")
        out[name] = value
    return out


def defaults_from(spend_caps_config: Any, global_quota: Any) -> dict[str, Any]:
    """The config file's settings as the service's fields: `spendCaps`, with the per-key hourly caps taken
    from `globalQuota.hourlyCallLimit` / `hourlyCreditLimit` where `spendCaps` does not set them."""
    out: dict[str, Any] = {}
    if global_quota is not None:
        out["hourlyCallLimit"] = global_quota.hourly_call_limit
        out["hourlyCreditLimit"] = global_quota.hourly_credit_limit
    if spend_caps_config is not None:
        c = spend_caps_config
        out.update(
            serverDailyCreditCap=c.server_daily_credit_cap,
            serverDailyCallCap=c.server_daily_call_cap,
            breachAction=c.breach_action,
            autoResumeAfterSeconds=c.auto_resume_after_seconds,
        )
        if c.hourly_call_limit is not None:
            out["hourlyCallLimit"] = c.hourly_call_limit
        if c.hourly_credit_limit is not None:
            out["hourlyCreditLimit"] = c.hourly_credit_limit
    return out
