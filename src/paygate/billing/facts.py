"""Gathering what the gate's pure checks read: the key's effective policy (key + group + plan),
the client's address and country, and the key's and team's quota counters.

Only what a key's policy needs is computed: a key without an IP allowlist never
has its address parsed, one without country lists never reads the header.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from paygate.billing.quota import TEAM_DOC, QuotaBook, team_subject, tenant_of, tenant_subject
from paygate.core import gate
from paygate.core.budgets import BudgetFacts
from paygate.core.netaddr import client_ip, ip_in
from paygate.core.policy import EffectivePolicy, Quota, resolve
from paygate.core.quota_rules import QuotaRule
from paygate.core.records import KeyRecord
from paygate.core.spend_caps import CapFacts
from paygate.credentials.resolver import Credential, Rejected
from paygate.store.base import Store

GROUP_DOC = "group"
TENANT_DOC = "tenant"
PLAN_DOC = "plan"
log = logging.getLogger("paygate.billing")
# What a key gets when its group or plan document cannot be read (a restore or an edit of the state
# file left it malformed): no tool is allowed, so its calls are denied cleanly rather than answered 500
# or run without the group's limits. Restores validate documents; this is the defence behind that.
UNREADABLE_POLICY_TOOL = "\x00unreadable-policy"


@dataclass(frozen=True, slots=True)
class ClientFacts:
    """What the HTTP request says about the caller (raw; interpreted only when a policy needs it)."""

    peer: str | None = None
    forwarded_for: bytes | None = None
    headers: dict[bytes, bytes] | None = None


NO_CLIENT = ClientFacts()


class CapSource(Protocol):
    """The spend caps' counters (rules/spend_caps.py), read and counted in the same step as the charge."""

    def facts(self, key_hash: str, now: float) -> CapFacts | None: ...

    def add(self, key_hash: str, calls: int, credits: int, now: float) -> None: ...

    def remove(self, key_hash: str, calls: int, credits: int, now: float) -> None: ...


class BudgetSource(Protocol):
    """The budget policies' counts (rules/budgets.py), read and counted in the same step as the charge."""

    def facts(self, key: KeyRecord, now: float) -> BudgetFacts | None: ...

    def add(self, key: KeyRecord, credits: int, now: float) -> None: ...

    def remove(self, key: KeyRecord, credits: int, now: float) -> None: ...


class RateSource(Protocol):
    """Adaptive rates (rules/adaptive.py): a key's calls/min, scaled while an adjustment holds."""

    def limit(self, key_hash: str, base: int) -> int: ...


class RuleSource(Protocol):
    """The quota rules' counters (rules/quota_rules.py), per key and tool, read and counted like the caps'."""

    def facts(self, key_hash: str, tool: str, now: float) -> list[tuple[QuotaRule, int]] | None: ...

    def add(self, key_hash: str, tool: str, calls: int, credits: int, now: float) -> None: ...

    def remove(self, key_hash: str, tool: str, calls: int, credits: int, now: float) -> None: ...


class GateFacts:
    def __init__(
        self,
        store: Store,
        quotas: QuotaBook,
        *,
        global_quota: Quota | None,
        trusted_proxies: tuple[str, ...],
        country_header: str,
    ) -> None:
        self.store = store
        self.quotas = quotas
        self.global_quota = global_quota
        self.trusted_proxies = trusted_proxies
        self.country_header = country_header.lower().encode("latin-1")
        self._policies: dict[str, EffectivePolicy] = {}
        # Set while a spend cap is configured (rules/spend_caps.py), else None: no cost on the hot path.
        self.caps: CapSource | None = None
        self.budgets: BudgetSource | None = None  # set while a budget policy exists (rules/budgets.py)
        self.adaptive: RateSource | None = None  # set while adaptive rates are enabled (rules/adaptive.py)
        self.quota_rules: RuleSource | None = None  # likewise, while a quota rule exists
        self._generation = -1

    def rate_limit(self, key_hash: str, base: int) -> int:
        """The key's calls/min where the rate decision is made: `base`, or adaptive rates' adjustment of it."""
        adaptive = self.adaptive
        return base if adaptive is None or not base else adaptive.limit(key_hash, base)

    def set_global_quota(self, quota: Quota | None) -> None:
        """A hot reload's `globalQuota`: every key's policy is resolved again with it."""
        self.global_quota = quota
        self._policies = {}

    def policy_for(self, key: KeyRecord) -> EffectivePolicy:
        """Resolved once per key and reused until a key or document changes (`store.generation`)."""
        if self._generation != self.store.generation:
            self._policies.clear()
            self._generation = self.store.generation
        policy = self._policies.get(key.key_hash)
        if policy is None:
            group = self.store.doc_peek(GROUP_DOC, key.group_id) if key.group_id else None
            plan = self.store.doc_peek(PLAN_DOC, key.plan) if key.plan else None
            try:
                policy = resolve(key, group, plan, self.global_quota)
            except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError):
                log.error("key %s: its group or plan document is malformed; its calls are denied", key.masked)
                policy = dataclasses.replace(
                    resolve(key, None, None, self.global_quota), allowed_tools=frozenset({UNREADABLE_POLICY_TOOL})
                )
            self._policies[key.key_hash] = policy
        return policy

    def team_of(self, key: KeyRecord) -> dict[str, Any] | None:
        if key.team_id is None:
            return None
        team = self.store.doc_peek(TEAM_DOC, key.team_id)
        if team is None or not team.get("active", True):
            return None
        budget, quota = team.get("budget", 0), team.get("quota")
        if type(budget) is not int or not (
            quota is None or (isinstance(quota, dict) and all(type(v) is int for v in quota.values()))
        ):
            return {"budget": -1}  # malformed: the team's budget refuses every call (never a 500, never unlimited)
        return team

    def tenant_of(self, key: KeyRecord) -> dict[str, Any] | None:
        """The tenant document of a key bound to one (docs/tenants.md); a binding whose tenant is gone is none.
        A malformed document refuses the key's calls (never a 500, never unlimited)."""
        tenant_id = tenant_of(key)
        if tenant_id is None:
            return None
        tenant = self.store.doc_peek(TENANT_DOC, tenant_id)
        if tenant is None:
            return None
        quota, rate = tenant.get("quota"), tenant.get("rateLimitPerMin", 0)
        if type(rate) is not int or not (
            quota is None or (isinstance(quota, dict) and all(type(v) is int for v in quota.values()))
        ):
            return {"id": tenant_id, "name": tenant.get("name"), "status": "unreadable"}
        return tenant

    def tenant_window(self, key: KeyRecord, now: float, subjects: list[str] | None) -> gate.Denial | None:
        """The tenant's calls/min window, shared by all its keys: hit (the subject appended to `subjects`, for
        the caller to undo if the call is refused later) or, with `subjects` None, only peeked (a dry run)."""
        tenant = self.tenant_of(key) if key.extra else None
        limit = tenant.get("rateLimitPerMin") if tenant is not None else 0
        if not limit or tenant is None:
            return None
        subject = tenant_subject(str(tenant["id"]))
        store = self.store
        window = store.rate_peek(subject, limit, now) if subjects is None else store.rate_hit(subject, limit, now)
        if not window.allowed:
            return gate.Denial("tenant_rate_limited", f"tenant {tenant.get('name')!r}: {limit} calls/min")
        if subjects is not None:
            subjects.append(subject)
        return None

    def client_ip(self, client: ClientFacts) -> str | None:
        forwarded = client.forwarded_for.decode("latin-1") if client.forwarded_for else None
        return client_ip(client.peer, forwarded, self.trusted_proxies)

    def country(self, client: ClientFacts) -> str | None:
        """ISO alpha-2 from the country header — believed only from a trusted proxy (anyone can send it)."""
        if not client.headers or not self.trusted_proxies or not ip_in(client.peer, self.trusted_proxies):
            return None
        raw = client.headers.get(self.country_header)
        if raw is None:
            return None
        code = raw.decode("latin-1").strip().upper()
        return code if len(code) == 2 and code.isalpha() else None

    def gate_input(
        self,
        key: KeyRecord | None,
        key_given: bool,
        tool: str,
        amount: int,
        now: float,
        client: ClientFacts,
        policy: EffectivePolicy | None,
        token: Credential | Rejected | None = None,
    ) -> gate.GateInput:
        if token is not None:  # a token, not the key itself: refused, or narrowed to some tools
            g = self.gate_input(key, key_given, tool, amount, now, client, policy)
            if isinstance(token, Rejected):
                g.rejected = gate.Denial(token.reason, token.detail)
            else:
                g.token_tools, g.token_reason = token.tools, token.scope_reason
            return g
        if key is None or policy is None:
            return gate.GateInput(key, key_given, tool, amount, now)
        team = self.team_of(key)
        tenant = self.tenant_of(key) if key.extra else None
        return gate.GateInput(
            key,
            key_given,
            tool,
            amount,
            now,
            policy,
            client_ip=self.client_ip(client) if policy.ip_allowlist else None,
            country=self.country(client) if key.allowed_countries or key.denied_countries else None,
            quota_used=self.quotas.used(key.key_hash, now) if policy.quota is not None else None,
            team=team,
            team_used=self.quotas.used(team_subject(key.team_id), now) if key.team_id and team else None,
            team_spent=self.quotas.team_spent(key.team_id) if key.team_id and team else 0,
            caps=self.caps.facts(key.key_hash, now) if self.caps is not None else None,
            budgets=self.budgets.facts(key, now) if self.budgets is not None else None,
            tenant=tenant,
            tenant_used=self.quotas.used(tenant_subject(str(tenant["id"])), now) if tenant is not None else None,
            quota_rules=self.quota_rules.facts(key.key_hash, tool, now) if self.quota_rules is not None else None,
        )

    def count(self, key: KeyRecord, tool: str, calls: int, credits: int, now: float) -> None:
        """An admitted call (or a surcharge: 0 calls) counted by the caps, budgets and rules that are set, in
        the step of the charge: none is ever overshot on one instance."""
        if self.caps is not None:
            self.caps.add(key.key_hash, calls, credits, now)
        if self.budgets is not None:
            self.budgets.add(key, credits, now)
        if self.quota_rules is not None:
            self.quota_rules.add(key.key_hash, tool, calls, credits, now)

    def uncount(self, key: KeyRecord, tool: str, calls: int, credits: int, now: float) -> None:
        """A refunded call taken back out of the counts."""
        if self.caps is not None:
            self.caps.remove(key.key_hash, calls, credits, now)
        if self.budgets is not None:
            self.budgets.remove(key, credits, now)
        if self.quota_rules is not None:
            self.quota_rules.remove(key.key_hash, tool, calls, credits, now)
