"""The gate's pure policy checks: an ordered list of small functions.

Each check looks at a `GateInput` and returns `None` (pass) or a `Denial`.
The order (what a caller learns first): who you are (key present, known, not
revoked, not suspended, its tenant not suspended, not expired), where you call from (IP allowlist,
country), what you call (tool ACL); then, after the rate windows admitted the
call, money: credits, spending limit, quotas, the tenant's quota, team budget and quota.
Stateful steps (rate windows, the atomic charge) run in the billing service,
which gathers the facts these checks read. Shadow mode is applied once, by the
caller, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from paygate.core import budgets, quota, quota_rules, spend_caps
from paygate.core.netaddr import ip_in
from paygate.core.policy import EffectivePolicy
from paygate.core.records import ChargeLimits, KeyRecord


@dataclass(slots=True)  # not frozen: built on every tool call, and a frozen __init__ costs ~4x. Read only.
class GateInput:
    key: KeyRecord | None
    key_given: bool
    tool: str
    price: int
    now: float
    policy: EffectivePolicy | None = None  # the key's resolved policy (key + group + plan)
    client_ip: str | None = None  # set when the policy has an IP allowlist
    country: str | None = None  # ISO alpha-2 from the trusted country header, when the key has country lists
    quota_used: quota.Counter | None = None  # set when the policy has a quota
    team: dict[str, Any] | None = None  # the key's active team document
    team_used: quota.Counter | None = None
    team_spent: int = 0
    # The caller's token, when it is not the key itself (credentials/resolver.py): refused, or narrowed
    rejected: Denial | None = None  # expired, revoked, forged …: refused before anything else is looked at
    token_tools: frozenset[str] | None = None  # the token may call only these, within the key's own ACL
    token_reason: str = "tool_not_allowed"  # what a call outside them is refused with
    caps: spend_caps.CapFacts | None = None  # set only when a spend cap is configured (rules/spend_caps.py)
    budgets: budgets.BudgetFacts | None = None  # set only when a budget policy applies (rules/budgets.py)
    tenant: dict[str, Any] | None = None  # the key's tenant document (policy/tenants.py), when it is bound to one
    tenant_used: quota.Counter | None = None
    # each quota rule that applies to this key and tool, with its count this period (rules/quota_rules.py)
    quota_rules: list[tuple[quota_rules.QuotaRule, int]] | None = None


@dataclass(frozen=True, slots=True)
class Denial:
    reason: str
    detail: str = ""
    retry_after: int | None = None  # seconds, for a refusal that says when to come back (budget_throttled)

    @property
    def text(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


Check = Callable[[GateInput], Denial | None]


def check_key_present(g: GateInput) -> Denial | None:
    return None if g.key_given else Denial("missing_api_key")


def check_token_valid(g: GateInput) -> Denial | None:
    return g.rejected


def check_key_known(g: GateInput) -> Denial | None:
    return None if g.key is not None else Denial("invalid_api_key")


def check_key_active(g: GateInput) -> Denial | None:
    assert g.key is not None
    return None if g.key.active else Denial("key_revoked")


def check_key_not_suspended(g: GateInput) -> Denial | None:
    assert g.key is not None
    return Denial("key_suspended") if g.key.suspended else None


def check_tenant_active(g: GateInput) -> Denial | None:
    """A suspended tenant's keys are refused everything a key is needed for (docs/tenants.md)."""
    if g.tenant is None:
        return None
    status = g.tenant.get("status", "active")
    if status == "active":
        return None
    if status == "suspended":
        return Denial("tenant_suspended", f"tenant {g.tenant.get('name')!r} is suspended")
    # A malformed document (a hand-edited state file) refuses its keys: never a 500, never unlimited.
    return Denial("tenant_suspended", f"tenant {g.tenant.get('name')!r} cannot be read; its keys are refused")


def check_key_not_expired(g: GateInput) -> Denial | None:
    assert g.key is not None
    expires = g.key.expires_at
    return Denial("api_key_expired") if expires is not None and g.now >= expires else None


def check_ip_allowed(g: GateInput) -> Denial | None:
    allowlist = g.policy.ip_allowlist if g.policy is not None else ()
    if allowlist and not ip_in(g.client_ip, allowlist):
        return Denial("ip_not_allowed", f"{g.client_ip or 'unknown address'} is not in the key's allowlist")
    return None


def check_country_allowed(g: GateInput) -> Denial | None:
    """Fail-closed: with an allow list, an unknown country is refused."""
    assert g.key is not None
    allowed, denied = g.key.allowed_countries, g.key.denied_countries
    if allowed and g.country not in allowed:
        return Denial("country_not_allowed", f"{g.country or 'unknown country'} is not in the key's allowed countries")
    if denied and g.country in denied:
        return Denial("country_not_allowed", f"{g.country} is denied for this key")
    return None


def check_tool_allowed(g: GateInput) -> Denial | None:
    assert g.key is not None
    if g.policy is not None:
        allowed, denied = g.policy.allowed_tools, g.policy.denied_tools
    else:
        allowed, denied = frozenset(g.key.allowed_tools), frozenset(g.key.denied_tools)
    if allowed and g.tool not in allowed:
        return Denial("tool_not_allowed", f"{g.tool} is not in this key's allowed tools")
    if g.tool in denied:
        return Denial("tool_not_allowed", f"{g.tool} is denied for this key")
    return None


def check_token_tools(g: GateInput) -> Denial | None:
    if g.token_tools is not None and g.tool not in g.token_tools:
        return Denial(g.token_reason, f"{g.tool} is not among the tools this token may call")
    return None


def check_credits(g: GateInput) -> Denial | None:
    assert g.key is not None
    if g.key.credits < g.price:
        return Denial("insufficient_credits", f"need {g.price}, have {g.key.credits}")
    return None


def check_spending_limit(g: GateInput) -> Denial | None:
    assert g.key is not None
    limit = g.policy.spending_limit if g.policy is not None else g.key.spending_limit
    if limit and g.key.total_spent + g.price > limit:
        return Denial("spending_limit_exceeded", f"limit {limit}, spent {g.key.total_spent}, need {g.price}")
    return None


def check_quota(g: GateInput) -> Denial | None:
    if g.policy is None or g.policy.quota is None or g.quota_used is None:
        return None
    why = quota.exceeded(quota.limits_of(g.policy.quota), g.quota_used, g.price)
    return Denial("quota_exceeded", why) if why else None


def limits_of_call(g: GateInput) -> ChargeLimits:
    """The limits `check_spending_limit`, `check_quota` and `check_team` applied, for the store to apply
    again when it charges (a shared store sees every instance's calls)."""
    assert g.key is not None
    policy, team = g.policy, g.team
    spending = policy.spending_limit if policy is not None else g.key.spending_limit
    key_quota = quota.limits_of(policy.quota) if policy is not None and policy.quota is not None else (0, 0, 0, 0)
    if team is None:
        return ChargeLimits(spending, key_quota)
    team_quota = quota.limits_of(team.get("quota"), quota.TEAM_LIMITS)
    return ChargeLimits(spending, key_quota, g.key.team_id, int(team.get("budget") or 0), team_quota)


def check_team(g: GateInput) -> Denial | None:
    """Team budget and quota: both must pass as well as the key's own checks."""
    if g.team is None:
        return None
    budget = int(g.team.get("budget") or 0)
    if budget and g.team_spent + g.price > budget:
        return Denial("team_budget_exceeded", f"team budget {budget}, spent {g.team_spent}, need {g.price}")
    if g.team_used is not None:
        why = quota.exceeded(quota.limits_of(g.team.get("quota"), quota.TEAM_LIMITS), g.team_used, g.price)
        if why:
            return Denial("team_quota_exceeded", f"team {why}")
    return None


def check_tenant_quota(g: GateInput) -> Denial | None:
    """The tenant's daily and monthly call and credit limits, over all its keys together."""
    if g.tenant is None or g.tenant_used is None:
        return None
    why = quota.exceeded(quota.limits_of(g.tenant.get("quota"), quota.TEAM_LIMITS), g.tenant_used, g.price)
    return Denial("tenant_quota_exceeded", f"tenant {why}") if why else None


def check_spend_caps(g: GateInput) -> Denial | None:
    """Server-wide daily and per-key hourly caps (docs/money-rules.md): the detail starts with the cap's name."""
    if g.caps is None:
        return None
    hit = spend_caps.exceeded(g.caps, g.price)
    return Denial(spend_caps.CAP_REASON, f"{hit[0]}: {hit[1]}") if hit else None


def check_budgets(g: GateInput) -> Denial | None:
    """Budget policies with action deny or throttle (docs/money-rules.md): the detail starts with the policy's id."""
    if g.budgets is None:
        return None
    hit = budgets.refusal(g.budgets, g.price)
    return Denial(hit.reason, f"{hit.policy_id}: {hit.detail}", hit.retry_after) if hit else None


def check_quota_rules(g: GateInput) -> Denial | None:
    """A deny or throttle quota rule whose hard cap (limit plus burst) one more call would pass."""
    if g.quota_rules is None:
        return None
    verdict = quota_rules.judge(g.quota_rules, g.price, g.now)
    return Denial(quota_rules.REASON, verdict.refuse[1]) if verdict.refuse else None


# Identity only: for methods that need a valid key but are not tool calls (no ACL).
IDENTITY_CHECKS: tuple[Check, ...] = (
    check_key_present,
    check_token_valid,
    check_key_known,
    check_key_active,
    check_key_not_suspended,
    check_tenant_active,
    check_key_not_expired,
    check_ip_allowed,
    check_country_allowed,
)
# Identity and access: run before the rate windows are touched.
ACCESS_CHECKS: tuple[Check, ...] = (*IDENTITY_CHECKS, check_tool_allowed, check_token_tools)
# Money: run after the rate windows admitted the call, just before the charge.
FUNDS_CHECKS: tuple[Check, ...] = (
    check_credits,
    check_spending_limit,
    check_quota,
    check_tenant_quota,
    check_team,
    check_spend_caps,
    check_budgets,
    check_quota_rules,
)


def evaluate(g: GateInput, checks: Sequence[Check]) -> Denial | None:
    """The first denial, in order, or None when every check passes."""
    for check in checks:
        denial = check(g)
        if denial is not None:
            return denial
    return None
