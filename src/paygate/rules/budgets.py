"""Budget policies (GET/POST/DELETE /admin/budget-policies; docs/money-rules.md#budget-policies).

Each policy limits a target's spend (every call, a namespace's keys, or one key) by a daily and a monthly
credit budget and a burn rate (credits/minute over a window), with an action: `deny` and `throttle`
refuse the call that would pass a limit before any charge (core/budgets.py), `alert` lets it through and
announces the breach once (`budget.alert`). The gate reads the counts kept here, and `BillingService.admit`
counts the call in the same event-loop step as the charge (no `await` in between): exact on one instance.
On a Redis fleet each instance counts its own calls on top of what the usage log held when it started.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from typing import Any

import orjson

from paygate.billing.facts import GateFacts
from paygate.core import budgets
from paygate.core.budgets import BudgetFacts, PolicyFacts
from paygate.core.domain_errors import Invalid, NotFound, TooMany
from paygate.core.gate import Denial
from paygate.core.quota import day_start, month_start, next_day, next_month
from paygate.core.records import KeyRecord
from paygate.core.values import iso_seconds
from paygate.events.hub import EventHub
from paygate.keys.service import KeyNotFound, KeyService
from paygate.rules.budget_policy import MAX_POLICIES, Policy, checked, from_doc, parse_target
from paygate.store.base import Store
from paygate.store.shared import redis_store

log = logging.getLogger("paygate.rules")
META_KEY = "rules.budget_policies"
ACTOR = "budget-policies"
RELOAD_SECONDS = 5.0
SEED_ROWS = 200_000  # usage rows read to rebuild the burn-rate windows at start


class BudgetPolicies:
    def __init__(self, store: Store, events: EventHub, keys: KeyService, facts: GateFacts) -> None:
        self.store = store
        self.events = events
        self.keys = keys
        self.gate_facts = facts
        self.policies: list[Policy] = []
        self._by_key: dict[str, list[Policy]] = {}
        self._by_ns: dict[str, list[Policy]] = {}
        self._every: list[Policy] = []
        self._seen: str | None = None
        self._last_reload = 0.0
        self.refused: Counter[str] = Counter()  # by deny reason
        self.alerts: Counter[str] = Counter()  # by kind: daily, monthly, burn_rate

    # --- settings -----------------------------------------------------------------------------------
    def load(self, now: float) -> None:
        """At start (and from a fleet's peers): the stored policies, their counts rebuilt from the usage log."""
        raw = self._seen = self.store.get_meta(META_KEY)
        docs: list[Any] = []
        if raw:
            try:
                docs = list(orjson.loads(raw))
            except (orjson.JSONDecodeError, TypeError) as exc:  # never a crash at start
                log.error("budget policies: the stored policies are unreadable (%s); none apply", exc)
        old = {p.id: p for p in self.policies}
        policies = []
        for doc in docs:
            try:
                policy = from_doc(doc)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("budget policies: a stored policy is unreadable (%s); skipped", exc)
                continue
            if policy.id in old:  # its refusal and alert counts survive a reload
                policy.refused, policy.alerts = old[policy.id].refused, old[policy.id].alerts
            policies.append(policy)
        self._install(policies)
        self.rebuild(now)

    def _install(self, policies: list[Policy]) -> None:
        self.policies = policies
        self._by_key, self._by_ns, self._every = {}, {}, []
        for p in policies:
            if p.key_hash is not None:
                self._by_key.setdefault(p.key_hash, []).append(p)
            elif p.namespace is not None:
                self._by_ns.setdefault(p.namespace, []).append(p)
            else:
                self._every.append(p)
        # The gate reads the policies only while one exists: with none, the hot path does not look here.
        self.gate_facts.budgets = self if policies else None

    def _save(self) -> None:
        raw = orjson.dumps([p.doc() for p in self.policies]).decode()
        self.store.set_meta(META_KEY, raw)
        self._seen = raw

    def create(self, body: dict[str, Any], actor: str, now: float) -> dict[str, Any]:
        """A new policy, or (with `id`) changes to an existing one: checked whole before anything changes."""
        policy_id = body.get("id")
        current = next((p for p in self.policies if p.id == policy_id), None) if policy_id is not None else None
        if policy_id is not None and current is None:
            raise NotFound(f"No budget policy with id {policy_id!r}")
        doc = checked(body, _public(current) if current is not None else None)
        key_hash, target = self._target(doc["target"]) if "target" in body or current is None else (None, "")
        if current is None and len(self.policies) >= MAX_POLICIES:
            raise TooMany(f"At most {MAX_POLICIES} budget policies")
        if current is not None and "target" not in body:
            key_hash, target = current.key_hash, current.target
        policy = from_doc(
            {
                **doc,
                "id": current.id if current is not None else "bp_" + secrets.token_hex(6),
                "target": target,
                "keyHash": key_hash,
                "createdAt": current.created_at if current is not None else iso_seconds(now),
            }
        )
        if current is not None:
            policy.refused, policy.alerts = current.refused, current.alerts
        policies = [policy if p is current else p for p in self.policies]
        if current is None:
            policies.append(policy)
        self._install(policies)
        self._save()
        self.rebuild(now, [policy])  # its counts from the usage log: a new policy knows what was spent already
        self.events.publish(
            "budget_policies.updated", actor, op="updated" if current is not None else "created", **_public(policy)
        )
        return self.policy_view(policy, now)

    def _target(self, target: str) -> tuple[str | None, str]:
        kind, ref = parse_target(target)
        if kind != "key":
            return None, target
        assert ref is not None
        try:
            key = self.keys.find(ref)
        except KeyNotFound as exc:
            raise Invalid("target: API key not found") from exc
        return key.key_hash, f"key:{key.masked}"

    def delete(self, policy_id: str, actor: str, now: float) -> dict[str, Any]:
        policy = next((p for p in self.policies if p.id == policy_id), None)
        if policy is None:
            raise NotFound(f"No budget policy with id {policy_id!r}")
        view = self.policy_view(policy, now)
        self._install([p for p in self.policies if p is not policy])
        self._save()
        self.events.publish("budget_policies.updated", actor, op="deleted", **_public(policy))
        return view

    def reload(self, now: float) -> None:
        """A ticker on a fleet: follow another instance's change (a cheap read when there was none)."""
        if now - self._last_reload < RELOAD_SECONDS:
            return
        self._last_reload = now
        if self.store.get_meta(META_KEY) != self._seen:
            self.load(now)

    def rebuild(self, now: float, only: list[Policy] | None = None) -> None:
        """Today's, this month's and the windows' spend of every policy's target (or `only` these), from
        the usage log."""
        policies = self.policies if only is None else only
        if not policies:
            return
        namespaces = {k.key_hash: k.namespace for k in self.store.list_keys()}
        day = self.store.usage_sums(day_start(now))
        month = self.store.usage_sums(month_start(now))
        widest = max(p.window_minutes for p in policies) * 60
        rows = [
            r
            for r in self.store.query_usage(now - widest, SEED_ROWS)
            if r.allowed and r.credits and not (r.deny_reason or "").startswith("shadow")
        ]
        for p in policies:
            keys = {h for h in {*day, *month, *(r.key_hash for r in rows)} if self._matches(p, h, namespaces.get(h))}
            edge = now - p.counts.window_seconds
            window = [(r.timestamp, r.credits) for r in rows if r.key_hash in keys and r.timestamp >= edge]
            spent_day = sum(c for h, (_, c) in day.items() if h in keys)
            p.counts.seed(spent_day, sum(c for h, (_, c) in month.items() if h in keys), window, now)
            # A budget already passed was announced before (by this or an earlier run): not again.
            c = p.counts
            p.alerted_day = day_start(now) if p.daily_budget and c.day_spent >= p.daily_budget else -1.0
            p.alerted_month = month_start(now) if p.monthly_budget and c.month_spent >= p.monthly_budget else -1.0
            p.burn_breached = bool(p.burn_limit) and c.window_spent > p.burn_limit * p.window_minutes

    @staticmethod
    def _matches(p: Policy, key_hash: str, namespace: str | None) -> bool:
        if p.key_hash is not None:
            return p.key_hash == key_hash
        ns = p.namespace
        return ns is None or ns == namespace

    def _of(self, key: KeyRecord) -> list[Policy]:
        return [*self._by_key.get(key.key_hash, ()), *self._by_ns.get(key.namespace, ()), *self._every]

    # --- the gate's side (on the event loop, in the step of the charge) -------------------------------
    def facts(self, key: KeyRecord, now: float) -> BudgetFacts | None:
        out = []
        for p in self._of(key):
            if p.action == "alert":
                continue
            c = p.counts
            c.roll(now)
            out.append(
                PolicyFacts(
                    p.id, p.action, p.daily_budget, p.monthly_budget, p.burn_limit, c.window_seconds,
                    c.day_spent, c.month_spent, c.window_spent, c,
                )
            )  # fmt: skip
        return BudgetFacts(tuple(out), now) if out else None

    def add(self, key: KeyRecord, credits: int, now: float) -> None:
        if not credits:
            return
        for p in self._of(key):
            p.counts.add(credits, now)
            if p.action == "alert":
                self._alert(p, now)

    def remove(self, key: KeyRecord, credits: int, now: float) -> None:
        if credits:
            for p in self._of(key):
                p.counts.remove(credits, now)

    def _alert(self, p: Policy, now: float) -> None:
        """`budget.alert` once per day / month a budget is reached, once per breach of the burn rate."""
        c = p.counts
        if p.daily_budget and c.day_spent >= p.daily_budget and p.alerted_day != day_start(now):
            p.alerted_day = day_start(now)
            self._announce(p, "daily", c.day_spent, p.daily_budget)
        if p.monthly_budget and c.month_spent >= p.monthly_budget and p.alerted_month != month_start(now):
            p.alerted_month = month_start(now)
            self._announce(p, "monthly", c.month_spent, p.monthly_budget)
        allowance = p.burn_limit * p.window_minutes
        over = bool(p.burn_limit) and c.window_spent > allowance
        if over and not p.burn_breached:
            self._announce(p, "burn_rate", c.window_spent, allowance)
        p.burn_breached = over

    def _announce(self, p: Policy, kind: str, spent: int, limit: int) -> None:
        p.alerts += 1
        self.alerts[kind] += 1
        self.events.publish(
            "budget.alert",
            ACTOR,
            policyId=p.id,
            name=p.name,
            target=p.target,
            kind=kind,
            spent=spent,
            limit=limit,
            burnRate=round(budgets.burn_rate(p.counts.window_spent, p.counts.window_seconds), 3),
        )

    def on_denial(self, key: KeyRecord, denial: Denial) -> None:
        """BillingService.after_denial: count a policy's refusals (its id starts the detail)."""
        if denial.reason not in (budgets.EXCEEDED, budgets.THROTTLED):
            return
        self.refused[denial.reason] += 1
        policy_id = denial.detail.split(":", 1)[0]
        for p in self.policies:
            if p.id == policy_id:
                p.refused += 1

    def on_rekey(self, old_hash: str, new_hash: str) -> None:
        """A rotated key keeps its policies (a rotation is no way around a budget)."""
        moved = False
        for p in self.policies:
            if p.key_hash == old_hash:
                p.key_hash, moved = new_hash, True
        if moved:
            key = self.store.get_key(new_hash)
            for p in self.policies:
                if p.key_hash == new_hash and key is not None:
                    p.target = f"key:{key.masked}"
            self._install(self.policies)
            self._save()

    # --- the admin view -----------------------------------------------------------------------------
    def policy_view(self, p: Policy, now: float) -> dict[str, Any]:
        c = p.counts
        c.roll(now)
        rate = budgets.burn_rate(c.window_spent, c.window_seconds)
        left_day = max(p.daily_budget - c.day_spent, 0) if p.daily_budget else None
        left_month = max(p.monthly_budget - c.month_spent, 0) if p.monthly_budget else None
        lefts = [x for x in (left_day, left_month) if x is not None]
        remaining = min(lefts) if lefts else None
        eta = budgets.forecast_seconds(remaining, rate)
        return {
            **_public(p),
            "createdAt": p.created_at,
            "spentToday": c.day_spent,
            "spentThisMonth": c.month_spent,
            "windowSpent": c.window_spent,
            "burnRate": round(rate, 3),
            "burnRateExceeded": bool(p.burn_limit) and rate > p.burn_limit,
            "remainingToday": left_day,
            "remainingThisMonth": left_month,
            "forecast": {
                "remaining": remaining,
                "secondsUntilExhausted": eta,
                "exhaustedAt": iso_seconds(now + eta) if eta is not None else None,
            },
            "dailyResetAt": iso_seconds(next_day(now)),
            "monthlyResetAt": iso_seconds(next_month(now)),
            "refused": p.refused,
            "alerts": p.alerts,
        }

    def view(self, now: float) -> dict[str, Any]:
        return {
            "policies": [self.policy_view(p, now) for p in self.policies],
            "count": len(self.policies),
            "maxPolicies": MAX_POLICIES,
            "scope": "instance" if redis_store(self.store) is not None else "server",
            "refused": {**self.refused, "total": sum(self.refused.values())},
            "alerts": {**self.alerts, "total": sum(self.alerts.values())},
        }


def _public(p: Policy) -> dict[str, Any]:
    """The policy's settings as an admin sees them (the key masked)."""
    return {
        "id": p.id,
        "name": p.name,
        "target": p.target,
        "dailyBudget": p.daily_budget,
        "monthlyBudget": p.monthly_budget,
        "burnRateLimit": p.burn_limit,
        "windowMinutes": p.window_minutes,
        "action": p.action,
    }
