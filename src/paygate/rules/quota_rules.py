"""Quota rules (GET/POST/DELETE /admin/quota-rules; docs/money-rules.md#quota-rules).

Daily/weekly/monthly caps on a key's (or every key's) calls or credits, for one tool or all, checked by the
gate (`core/gate.check_quota_rules`) on the counts kept here. As with the spend caps, the gate reads them and
`BillingService.admit` counts the call in the same event-loop step as the charge, so concurrent calls on one
instance never pass a hard cap. On a Redis fleet each instance counts its own calls on top of what the shared
usage log held when it started (or when the rule was created): see the docs for the bound.

Counts are kept per (rule, key) for the rule's current UTC period and roll over on their own at the period's
boundary. At start and when a rule is created they are recounted from the usage log (refunds taken back).
The rules are one JSON document in the store's meta (`rules.quota_rules`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import orjson

from paygate.billing.facts import GateFacts
from paygate.core import quota_rules as qr
from paygate.core.domain_errors import Invalid, NotFound, TooLarge
from paygate.core.gate import Denial
from paygate.core.quota_rules import QuotaRule
from paygate.core.records import KeyRecord
from paygate.core.values import iso_seconds
from paygate.events.hub import EventHub
from paygate.store.base import Store
from paygate.store.shared import redis_store

log = logging.getLogger("paygate.rules")
META_KEY = "rules.quota_rules"
MAX_RULES = 500
MAX_LIMIT = 1_000_000_000
REBUILD_ROWS = 500_000  # usage rows read per rule when recounting (docs: what a longer log means)
RELOAD_SECONDS = 5.0
MAX_SHOWN = 50  # keys listed per rule in the view
MAX_WARNED = 100_000


def _rule(doc: dict[str, Any]) -> QuotaRule:
    return QuotaRule(
        doc["id"],
        doc["keyHash"],
        doc.get("tool"),
        doc["period"],
        doc["metric"],
        doc["limit"],
        doc["burstPercent"],
        doc["action"],
    )


class QuotaRules:
    """The rules, their counts this period, and what they refused or warned about."""

    def __init__(self, store: Store, events: EventHub, facts: GateFacts) -> None:
        self.store = store
        self.events = events
        self.gate_facts = facts
        self.docs: dict[str, dict[str, Any]] = {}  # id -> stored document (with the key's masked form)
        self.rules: tuple[QuotaRule, ...] = ()
        self._counts: dict[tuple[str, str], list[float]] = {}  # (rule id, key hash) -> [period start, calls, credits]
        self._warned: set[tuple[str, str, float]] = set()  # (rule id, key hash, period): warned this period
        self._seen: str | None = None
        self._last_reload = 0.0
        self.enabled = False  # the call stage (warning and Retry-After headers) runs only while rules exist
        self.denied: dict[str, int] = {}  # action -> refusals
        self.warnings = 0
        self.on_change: Callable[[], None] | None = None  # the call stage's chain follows `enabled`

    # --- settings -----------------------------------------------------------------------------------
    def load(self, now: float) -> None:
        raw = self._seen = self.store.get_meta(META_KEY)
        docs: dict[str, dict[str, Any]] = {}
        if raw:
            try:
                docs = {d["id"]: d for d in orjson.loads(raw)}
                [_rule(d) for d in docs.values()]
            except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
                log.error("quota rules: the stored rules are unreadable (%s); none applied", exc)
                docs = {}
        self._apply(docs)
        self._counts = {}
        for rule in self.rules:
            self.rebuild(rule, now)

    def _apply(self, docs: dict[str, dict[str, Any]]) -> None:
        self.docs = docs
        self.rules = tuple(_rule(d) for d in docs.values())
        self.enabled = bool(self.rules)
        # The gate reads the rules only while one exists: with none, the hot path does not look here at all.
        self.gate_facts.quota_rules = self if self.rules else None
        if self.on_change is not None:
            self.on_change()

    def _save(self, docs: dict[str, dict[str, Any]]) -> None:
        raw = orjson.dumps(list(docs.values())).decode()
        self.store.set_meta(META_KEY, raw)
        self._seen = raw
        self._apply(docs)

    def create(self, fields: dict[str, Any], key: KeyRecord | None, actor: str, now: float) -> dict[str, Any]:
        """A new rule (fields checked by the router); its counts recounted from the usage log at once."""
        if len(self.docs) >= MAX_RULES:
            raise TooLarge(f"At most {MAX_RULES} quota rules")
        limit, burst = fields["limit"], fields.get("burstPercent", 0)
        if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
            raise Invalid(f"limit must be an integer from 1 to {MAX_LIMIT}")
        if type(burst) is not int or not 0 <= burst <= 100:
            raise Invalid("burstPercent must be an integer from 0 to 100")
        doc = {
            "id": "qr_" + secrets.token_hex(6),
            "keyHash": key.key_hash if key is not None else "*",
            "key": key.masked if key is not None else "*",
            "keyName": key.name if key is not None else None,
            "tool": fields.get("tool"),
            "period": fields.get("period", "daily"),
            "metric": fields.get("metric", "calls"),
            "limit": limit,
            "burstPercent": burst,
            "action": fields.get("action", "deny"),
            "createdAt": iso_seconds(now),
            "createdBy": actor,
        }
        if doc["period"] not in qr.PERIODS or doc["metric"] not in qr.METRICS or doc["action"] not in qr.ACTIONS:
            raise Invalid("period must be daily|weekly|monthly, metric calls|credits, action deny|warn|throttle")
        self._save({**self.docs, doc["id"]: doc})
        self.rebuild(_rule(doc), now)
        public = self.public(doc, now)
        self.events.publish("quota_rule.created", actor, **{k: v for k, v in public.items() if k != "usage"})
        return public

    def delete(self, rule_id: str, actor: str) -> dict[str, Any]:
        doc = self.docs.get(rule_id)
        if doc is None:
            raise NotFound(f"No quota rule {rule_id!r}")
        self._save({k: v for k, v in self.docs.items() if k != rule_id})
        self._counts = {c: v for c, v in self._counts.items() if c[0] != rule_id}
        self.events.publish("quota_rule.deleted", actor, id=rule_id, key=doc["key"], tool=doc.get("tool"))
        return {"deleted": True, "id": rule_id}

    def reload(self, now: float) -> None:
        """A ticker on a fleet: follow another instance's change (a cheap read when there was none)."""
        if now - self._last_reload < RELOAD_SECONDS:
            return
        self._last_reload = now
        if self.store.get_meta(META_KEY) != self._seen:
            self.load(now)

    # --- counts (the gate's side: on the event loop, in the step of the charge) -------------------------
    def _count(self, rule: QuotaRule, key_hash: str, now: float) -> list[float]:
        start = qr.period_start(rule.period, now)
        entry = self._counts.get((rule.id, key_hash))
        if entry is None or entry[0] != start:  # a new period: the count rolls over
            entry = self._counts[(rule.id, key_hash)] = [start, 0, 0]
        return entry

    def facts(self, key_hash: str, tool: str, now: float) -> list[tuple[QuotaRule, int]] | None:
        used = []
        for rule in self.rules:
            if rule.applies(key_hash, tool):
                entry = self._count(rule, key_hash, now)
                used.append((rule, int(entry[1] if rule.metric == "calls" else entry[2])))
        return used or None

    def add(self, key_hash: str, tool: str, calls: int, credits: int, now: float) -> None:
        for rule in self.rules:
            if rule.applies(key_hash, tool):
                entry = self._count(rule, key_hash, now)
                entry[1] += calls
                entry[2] += credits
                used = entry[1] if rule.metric == "calls" else entry[2]
                if used > rule.limit and (rule.id, key_hash, entry[0]) not in self._warned:
                    if len(self._warned) >= MAX_WARNED:  # bounded: at worst an event is published again
                        self._warned.clear()
                    self._warned.add((rule.id, key_hash, entry[0]))  # once a period, not on every call
                    self.events.publish(
                        "quota_rule.exceeded", "quota-rules", id=rule.id, action=rule.action, used=used,
                        limit=rule.limit, hardCap=rule.hard_cap, period=rule.period, tool=tool,
                    )  # fmt: skip

    def remove(self, key_hash: str, tool: str, calls: int, credits: int, now: float) -> None:
        """A refunded call is not spent: taken back from the counts it is still in (never below zero)."""
        for rule in self.rules:
            if rule.applies(key_hash, tool):
                entry = self._count(rule, key_hash, now)
                entry[1], entry[2] = max(entry[1] - calls, 0), max(entry[2] - credits, 0)

    def on_rekey(self, old_hash: str, new_hash: str) -> None:
        """A rotated key keeps its rules and its counts (a rotation is no way around a quota)."""
        for rule_id, key_hash in list(self._counts):
            if key_hash == old_hash:
                self._counts[(rule_id, new_hash)] = self._counts.pop((rule_id, key_hash))
        if any(d["keyHash"] == old_hash for d in self.docs.values()):
            docs = {i: {**d, "keyHash": new_hash} if d["keyHash"] == old_hash else d for i, d in self.docs.items()}
            self._save(docs)

    def rebuild(self, rule: QuotaRule, now: float) -> None:
        """The rule's counts this period, recounted from the usage log: admitted, charged calls (not shadow
        mode's) of the rule's key and tool, less their refunds (ledger `refund:<tool>` entries)."""
        start = qr.period_start(rule.period, now)
        key = None if rule.key_hash == "*" else rule.key_hash
        self._counts = {c: v for c, v in self._counts.items() if c[0] != rule.id}
        for event in self.store.query_usage(start, REBUILD_ROWS, key_hash=key):
            if (
                event.allowed
                and not (event.deny_reason or "").startswith("shadow")
                and rule.applies(event.key_hash, event.tool)
            ):
                entry = self._count(rule, event.key_hash, now)
                entry[1] += 1
                entry[2] += event.credits
        for (rule_id, key_hash), entry in self._counts.items():
            if rule_id != rule.id:
                continue
            for _, ledger in self.store.ledger_page(key_hash, REBUILD_ROWS, since=start):
                if ledger.kind == "refund" and (rule.tool is None or ledger.memo == f"refund:{rule.tool}"):
                    entry[1], entry[2] = max(entry[1] - 1, 0), max(entry[2] - ledger.delta, 0)

    # --- what the call stage asks once the call is decided ----------------------------------------------
    def over(self, key_hash: str, tool: str, now: float) -> list[str]:
        """The rules this key is past the limit of (their warning), after its call was admitted."""
        out = []
        for rule, used in self.facts(key_hash, tool, now) or ():
            if used > rule.limit:
                out.append(f"{rule.id}; {rule.metric}={used}; limit={rule.limit}; hardCap={rule.hard_cap}")
        return out

    def on_denial(self, key: KeyRecord, denial: Denial) -> None:
        """BillingService.after_denial: count a refusal by the rule's action."""
        if denial.reason != qr.REASON:
            return
        rule = next((r for r in self.rules if denial.detail.startswith(r.id + ":")), None)
        action = rule.action if rule is not None else "deny"
        self.denied[action] = self.denied.get(action, 0) + 1

    def refusing(self, key_hash: str, tool: str, price: int, now: float) -> tuple[QuotaRule, int] | None:
        """The rule that refused a call (and the seconds until its period rolls over)."""
        verdict = qr.judge(self.facts(key_hash, tool, now) or [], price, now)
        return (verdict.refuse[0], verdict.refuse[2]) if verdict.refuse else None

    # --- the admin view -----------------------------------------------------------------------------
    def public(self, doc: dict[str, Any], now: float) -> dict[str, Any]:
        rule = _rule(doc)
        usage = []
        for (rule_id, key_hash), entry in self._counts.items():
            if rule_id == rule.id and entry[0] == qr.period_start(rule.period, now):
                usage.append((int(entry[1]), int(entry[2]), key_hash))
        shown = []
        for calls, credits, key_hash in sorted(usage, reverse=True)[:MAX_SHOWN]:
            key = self.store.get_key(key_hash)
            shown.append({"key": key.masked if key else None, "calls": calls, "credits": credits})
        view = {k: v for k, v in doc.items() if k != "keyHash"}
        return {
            **view,
            "hardCap": rule.hard_cap,
            "periodStart": iso_seconds(qr.period_start(rule.period, now)),
            "resetsAt": iso_seconds(qr.period_end(rule.period, now)),
            "usage": shown,  # this period's counts, the busiest keys first
        }

    def view(self, now: float) -> dict[str, Any]:
        return {
            "rules": [self.public(d, now) for d in self.docs.values()],
            "count": len(self.docs),
            "scope": "instance" if redis_store(self.store) is not None else "server",
            "denied": {**self.denied, "total": sum(self.denied.values())},
            "warnings": self.warnings,
        }
