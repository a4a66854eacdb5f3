"""What the client hands back besides tool results: a tool with its price, and a balance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp.types import Tool


@dataclass(frozen=True, slots=True)
class Pricing:
    """A tool's `_pricing` as the gateway lists it for this caller (its own price: group or plan
    overrides applied). Credits are integers."""

    credits_per_call: int
    pricing_model: str = "flat"
    rate_limit_per_min: int | None = None
    credits_per_kb_input: int = 0
    credits_per_kb_output: int = 0

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Pricing:
        return cls(
            credits_per_call=int(raw.get("creditsPerCall", 0)),
            pricing_model=str(raw.get("pricingModel", "flat")),
            rate_limit_per_min=raw.get("rateLimitPerMin") or None,
            credits_per_kb_input=int(raw.get("creditsPerKbInput", 0)),
            credits_per_kb_output=int(raw.get("creditsPerKbOutput", 0)),
        )


@dataclass(frozen=True, slots=True)
class PricedTool:
    """A tool from `tools/list` (the SDK's typed `Tool`) with its price; `pricing` is None only when
    the gateway listed none for it."""

    tool: Tool
    pricing: Pricing | None

    @property
    def name(self) -> str:
        return self.tool.name

    @property
    def description(self) -> str | None:
        return self.tool.description

    @property
    def input_schema(self) -> dict[str, Any]:
        return self.tool.input_schema


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """Calls and credits used in the current day or month, against the limits (None: unlimited)."""

    calls: int = 0
    credits: int = 0
    calls_limit: int | None = None
    credits_limit: int | None = None
    resets_at: str | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    """`GET /balance`: the key's credits and what the gate applies to it (docs/api.md)."""

    name: str
    credits: int
    total_spent: int
    total_calls: int
    suspended: bool
    last_used_at: str | None = None
    expires_at: str | None = None
    allowed_tools: tuple[str, ...] = ()
    denied_tools: tuple[str, ...] = ()
    spending_limit: int | None = None
    remaining_budget: int | None = None
    quota: dict[str, Any] | None = None
    quota_daily: QuotaUsage = field(default_factory=QuotaUsage)
    quota_monthly: QuotaUsage = field(default_factory=QuotaUsage)
    tags: dict[str, str] = field(default_factory=dict)
    namespace: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Balance:
        usage = raw.get("quotaUsage") or {}
        return cls(
            name=str(raw.get("name", "")),
            credits=int(raw["credits"]),
            total_spent=int(raw.get("totalSpent", 0)),
            total_calls=int(raw.get("totalCalls", 0)),
            suspended=bool(raw.get("suspended", False)),
            last_used_at=raw.get("lastUsedAt"),
            expires_at=raw.get("expiresAt"),
            allowed_tools=tuple(raw.get("allowedTools") or ()),
            denied_tools=tuple(raw.get("deniedTools") or ()),
            spending_limit=raw.get("spendingLimit"),
            remaining_budget=raw.get("remainingBudget"),
            quota=raw.get("quota"),
            quota_daily=_usage(usage.get("daily")),
            quota_monthly=_usage(usage.get("monthly")),
            tags=dict(raw.get("tags") or {}),
            namespace=raw.get("namespace"),
            raw=dict(raw),
        )


def _usage(raw: Any) -> QuotaUsage:
    if not isinstance(raw, Mapping):
        return QuotaUsage()
    calls, credits = raw.get("calls") or {}, raw.get("credits") or {}
    return QuotaUsage(
        calls=int(calls.get("used", 0)),
        credits=int(credits.get("used", 0)),
        calls_limit=calls.get("limit"),
        credits_limit=credits.get("limit"),
        resets_at=raw.get("resetsAt"),
    )


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """`POST /stripe/checkout`'s answer: where to send the buyer, and what the payment buys."""

    session_id: str
    url: str
    package_id: str
    credits: int
