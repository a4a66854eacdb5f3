"""Plain records the store reads and writes (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class _MaskedCache:
    """A slot for KeyRecord.masked's cache: outside the dataclass's fields, so never in asdict(),
    fields() (backups), ==, repr or the store's rows."""

    __slots__ = ("_masked",)
    _masked: tuple[str, str, str]  # (prefix, last4, masked)

    def _build_masked(self, prefix: str, last4: str) -> str:
        masked = f"{prefix}…{last4}"
        self._masked = (prefix, last4, masked)
        return masked


@dataclass(slots=True)
class KeyRecord(_MaskedCache):
    """One API key. `key_hash` is the identity; the raw key is never stored."""

    key_hash: str
    prefix: str
    last4: str
    name: str
    credits: int
    created_at: float
    total_spent: int = 0
    total_calls: int = 0
    last_used_at: float | None = None
    active: bool = True
    suspended: bool = False
    expires_at: float | None = None
    allowed_tools: list[str] = field(default_factory=list)
    denied_tools: list[str] = field(default_factory=list)
    quota: dict[str, int] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    namespace: str = "default"
    ip_allowlist: list[str] = field(default_factory=list)
    spending_limit: int = 0  # 0 means no limit
    alias: str | None = None
    group_id: str | None = None
    team_id: str | None = None
    plan: str | None = None
    allowed_countries: list[str] = field(default_factory=list)  # ISO 3166-1 alpha-2, upper case
    denied_countries: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    auto_topup: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # small per-feature state (suspendReason, …)

    @property
    def masked(self) -> str:
        """`prefix…last4`, built once: read several times per tool call. Kept with the very strings it
        was built from, so a record whose prefix or last4 is set anew (rotation does, on a copy) builds
        it again."""
        try:
            prefix, last4, masked = self._masked
            if prefix is self.prefix and last4 is self.last4:
                return masked
        except AttributeError:  # not built yet
            pass
        return self._build_masked(self.prefix, self.last4)


@dataclass(slots=True)  # not frozen: built on every tool call (a frozen __init__ costs ~4x). Read only.
class UsageEvent:
    """One gated tool call, allowed or denied."""

    timestamp: float
    key_hash: str
    key_masked: str
    key_name: str
    tool: str
    credits: int
    allowed: bool
    deny_reason: str | None = None
    namespace: str = "default"
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeResult:
    ok: bool
    balance: int  # the balance after the operation (or the unchanged balance when refused)


@dataclass(frozen=True, slots=True)
class ChargeLimits:
    """The money limits a charge must stay within, for a store that re-checks them when it applies the
    charge (Redis: instances admit calls on their own copies, so only the shared store can be exact).
    Quotas are (daily calls, monthly calls, daily credits, monthly credits); 0 is no limit."""

    spending_limit: int = 0
    quota: tuple[int, int, int, int] = (0, 0, 0, 0)
    team_id: str | None = None  # counted for the team whether or not it has limits
    team_budget: int = 0
    team_quota: tuple[int, int, int, int] = (0, 0, 0, 0)


NO_LIMITS = ChargeLimits()


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    timestamp: float
    key_hash: str
    delta: int
    kind: str  # create | topup | charge | refund | surcharge | import | transfer_in | transfer_out | reserve | …
    balance_after: int
    memo: str | None = None
