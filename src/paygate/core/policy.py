"""A key's effective policy: the key's own settings merged with its group's and its plan's.

Resolution (the reference's table; a plan sits below a group):

| policy            | resolution                                                      |
| allowedTools      | the key's if non-empty, else the group's, else the plan's       |
| deniedTools       | union of key, group and plan (most restrictive)                 |
| ipAllowlist       | union of key and group (additive); empty means any address      |
| rateLimitPerMin   | the group's if set, else the plan's, else the global limit      |
| quota             | the key's if set, else the group's, else the plan's, else globalQuota |
| toolPricing       | the group's per-tool price overrides the global price            |
| spendingLimit     | the key's if set (POST /limits), else the group's maxSpendingLimit |
| creditMultiplier  | the plan's (price * multiplier, rounded up), default 1          |

Pure: the caller passes the documents in.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from paygate.core.records import KeyRecord

QUOTA_FIELDS = ("dailyCallLimit", "monthlyCallLimit", "dailyCreditLimit", "monthlyCreditLimit")
Quota = dict[str, int]


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    allowed_tools: frozenset[str]  # empty: every tool
    denied_tools: frozenset[str]
    ip_allowlist: tuple[str, ...]  # empty: any address
    rate_limit_per_min: int | None  # None: the global limit applies
    quota: Quota | None
    quota_source: str  # key | group | plan | global | none
    spending_limit: int  # 0: none
    tool_prices: dict[str, int]  # creditsPerCall overrides from the group
    credit_multiplier: Fraction

    def per_call(self, tool: str, default: int) -> int:
        """The tool's per-call price: the group's override, else `default` (the global price)."""
        return self.tool_prices.get(tool, default)

    def price(self, tool: str, default: int) -> int:
        """The per-call price of `tool` for this key: group override, then plan multiplier."""
        return self.scale(self.per_call(tool, default))

    def scale(self, amount: int) -> int:
        """`amount` times the plan's credit multiplier, rounded up to whole credits."""
        if self.credit_multiplier == 1:
            return amount
        scaled = amount * self.credit_multiplier
        return -(-scaled.numerator // scaled.denominator)


def has_limits(quota: dict[str, Any] | None) -> bool:
    return quota is not None and any(int(quota.get(f) or 0) > 0 for f in QUOTA_FIELDS)


def _full(quota: dict[str, Any] | None) -> Quota | None:
    """All four limits, as integers (0: unlimited)."""
    return None if quota is None else {f: int(quota.get(f) or 0) for f in QUOTA_FIELDS}


def _quota(doc: dict[str, Any] | None) -> Quota | None:
    raw = (doc or {}).get("quota")
    if raw is None or not has_limits(raw):
        return None
    return {f: int(raw.get(f) or 0) for f in QUOTA_FIELDS}


_ONE = Fraction(1)
_NO_PRICES: dict[str, int] = {}


def resolve(
    key: KeyRecord, group: dict[str, Any] | None, plan: dict[str, Any] | None, global_quota: Quota | None
) -> EffectivePolicy:
    g: dict[str, Any] = group if group and group.get("active", True) else {}
    p: dict[str, Any] = plan or {}
    if not g and not p:  # the common case, on every call: the key's own settings
        own = key.quota if key.quota is not None and has_limits(key.quota) else None
        fallback = global_quota if own is None and global_quota is not None and has_limits(global_quota) else None
        return EffectivePolicy(
            frozenset(key.allowed_tools),
            frozenset(key.denied_tools),
            tuple(key.ip_allowlist),
            None,
            _full(own or fallback),
            "key" if own else "global" if fallback else "none",
            key.spending_limit,
            _NO_PRICES,
            _ONE,
        )
    allowed: list[str] = key.allowed_tools or g.get("allowedTools") or p.get("allowedTools") or []
    denied = set(key.denied_tools) | set(g.get("deniedTools") or ()) | set(p.get("deniedTools") or ())
    ips = tuple(dict.fromkeys([*key.ip_allowlist, *(g.get("ipAllowlist") or ())]))
    rate = g.get("rateLimitPerMin") or p.get("rateLimitPerMin") or None

    quota, source = None, "none"
    for candidate, name in (
        (key.quota if has_limits(key.quota) else None, "key"),
        (_quota(g), "group"),
        (_quota(p), "plan"),
        (global_quota if has_limits(global_quota) else None, "global"),
    ):
        if candidate is not None:
            quota, source = _full(candidate), name
            break

    spending = key.spending_limit or int(g.get("maxSpendingLimit") or 0)
    prices = {
        tool: int(price["creditsPerCall"])
        for tool, price in (g.get("toolPricing") or {}).items()
        if isinstance(price, dict) and price.get("creditsPerCall") is not None
    }
    multiplier = Fraction(str(p["creditMultiplier"])) if p.get("creditMultiplier") else _ONE
    return EffectivePolicy(
        frozenset(allowed),
        frozenset(denied),
        ips,
        int(rate) if rate else None,
        quota,
        source,
        spending,
        prices,
        multiplier,
    )
