"""Typed errors for a PayGate denial: one class per deny reason (docs/errors.md), mapped from
`error.data.reason` of the JSON-RPC error the gateway answers.

Kept free of the `mcp` SDK so the mapping can be used (and tested) on a raw JSON-RPC error too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INVALID_PARAMS = -32602


class PayGateError(Exception):
    """A call the gateway (or its backend) refused. `code` is the JSON-RPC code, `reason` the deny
    reason (`error.data.reason`, None when the error carried none) and `data` the whole `error.data`."""

    reason_name: str | None = None  # the deny reason a subclass stands for

    def __init__(self, code: int, message: str, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data: dict[str, Any] = dict(data or {})
        reason = self.data.get("reason")
        self.reason: str | None = reason if isinstance(reason, str) else self.reason_name

    @property
    def http_status(self) -> int | None:
        status = self.data.get("httpStatus")
        return status if isinstance(status, int) else None

    @property
    def tool(self) -> str | None:
        tool = self.data.get("tool")
        return tool if isinstance(tool, str) else None

    @property
    def credits_required(self) -> int | None:
        return _int_or_none(self.data.get("creditsRequired"))

    @property
    def credits_remaining(self) -> int | None:
        return _int_or_none(self.data.get("creditsRemaining"))

    @property
    def payment_required(self) -> dict[str, Any] | None:
        """The x402 `PaymentRequired` the gateway asked for (x402 on: `missing_api_key`, `invalid_api_key`
        and `insufficient_credits` carry one), else None."""
        value = self.data.get("paymentRequired")
        if isinstance(value, dict):
            return value
        return dict(self.data) if "accepts" in self.data else None  # the JSON-RPC form: data is the offer

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, reason={self.reason!r}, message={self.message!r})"


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- who you are ------------------------------------------------------------------------------------
class AuthenticationError(PayGateError):
    """The credential is missing, unknown or no longer valid (HTTP 401 in REST terms)."""


class MissingApiKey(AuthenticationError):
    reason_name = "missing_api_key"


class InvalidApiKey(AuthenticationError):
    reason_name = "invalid_api_key"


class KeyRevoked(AuthenticationError):
    reason_name = "key_revoked"


class KeyExpired(AuthenticationError):
    reason_name = "api_key_expired"


class InvalidToken(AuthenticationError):
    reason_name = "invalid_token"


class TokenExpired(AuthenticationError):
    reason_name = "token_expired"


class TokenRevoked(AuthenticationError):
    reason_name = "token_revoked"


class InvalidSignature(AuthenticationError):
    """The key must sign its requests (X-Signature) and this one's was missing, stale, reused or wrong."""

    reason_name = "invalid_signature"


# --- what you may do --------------------------------------------------------------------------------
class ForbiddenError(PayGateError):
    """The credential is valid but may not make this call (HTTP 403)."""


class KeySuspended(ForbiddenError):
    reason_name = "key_suspended"


class TenantSuspended(ForbiddenError):
    """The key's tenant is suspended (docs/tenants.md): every call is refused until an admin activates it."""

    reason_name = "tenant_suspended"


class IpNotAllowed(ForbiddenError):
    reason_name = "ip_not_allowed"


class IpBlocked(ForbiddenError):
    """The gateway's global IP rules refuse this address (a deny list, or a block after bad credentials)."""

    reason_name = "ip_blocked"


class DependencyNotMet(ForbiddenError):
    """The tool needs another tool called successfully first (`missing` in the error's data)."""

    reason_name = "dependency_not_met"


class ApprovalRequired(ForbiddenError):
    """The call needs an admin's approval and was sent where it cannot wait (a batch, a task)."""

    reason_name = "approval_required"


class ApprovalDenied(ForbiddenError):
    reason_name = "approval_denied"


class ApprovalTimeout(ForbiddenError):
    """No admin decided on the call within its approval rule's timeout."""

    reason_name = "approval_timeout"


class CountryNotAllowed(ForbiddenError):
    reason_name = "country_not_allowed"


class AclDenied(ForbiddenError):
    """The tool is outside the key's ACL or the scoped token's tools."""

    reason_name = "tool_not_allowed"


class InsufficientScope(ForbiddenError):
    """The OAuth token's `tools:` scopes do not cover the tool."""

    reason_name = "insufficient_scope"


class PluginDenied(ForbiddenError):
    """A gateway plugin refused the call (its reason is in the message); nothing was charged."""

    reason_name = "plugin_denied"


class UnknownTool(PayGateError):
    reason_name = "unknown_tool"


# --- how much, how often ----------------------------------------------------------------------------
class RateLimited(PayGateError):
    """Too many calls in the window; `retry_after` is how many seconds until it reopens (when told)."""

    reason_name = "rate_limited"

    @property
    def retry_after(self) -> float | None:
        value = self.data.get("retryAfterSeconds")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class ToolRateLimited(RateLimited):
    reason_name = "tool_rate_limited"


class TenantRateLimited(RateLimited):
    """The calls/min limit shared by all the keys of the key's tenant."""

    reason_name = "tenant_rate_limited"


class SessionRateLimited(RateLimited):
    reason_name = "session_rate_limited"


class ConcurrencyLimited(RateLimited):
    """Too many of this key's (or this tool's) calls in flight at once (-32005); try again after `retry_after`."""

    reason_name = "concurrency_limited"


class InsufficientCredits(PayGateError):
    """The key's balance is below the call's price: the denial `on_payment_required` handles (with any
    other that carries an x402 offer)."""

    reason_name = "insufficient_credits"


class SpendingLimitExceeded(PayGateError):
    reason_name = "spending_limit_exceeded"


class QuotaExceeded(PayGateError):
    reason_name = "quota_exceeded"


class TeamBudgetExceeded(PayGateError):
    reason_name = "team_budget_exceeded"


class TeamQuotaExceeded(QuotaExceeded):
    reason_name = "team_quota_exceeded"


class TenantQuotaExceeded(QuotaExceeded):
    reason_name = "tenant_quota_exceeded"


class SpendCapExceeded(PayGateError):
    """A spend cap (server-wide daily, or the key's hourly) refused the call; the message names the cap."""

    reason_name = "spend_cap_exceeded"


class BudgetExceeded(PayGateError):
    """A budget policy (daily, monthly, or with action deny its burn rate) refused the call; the message names
    the policy's id."""

    reason_name = "budget_exceeded"


class BudgetThrottled(RateLimited):
    """A budget policy with action throttle refused the call while its burn rate is over the limit;
    `retry_after` is when the window's rate falls back under it."""

    reason_name = "budget_throttled"


class QuotaRuleExceeded(QuotaExceeded):
    """A quota rule (/admin/quota-rules) refused the call; `retry_after` is set for a `throttle` rule."""

    reason_name = "quota_rule_exceeded"

    @property
    def retry_after(self) -> float | None:
        value = self.data.get("retryAfterSeconds")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class InvalidCostTags(PayGateError):
    """The X-Cost-Tags header was refused (not a JSON object of strings, a name not allowed, too large, or a
    tag past its distinct-values limit); nothing was charged."""

    reason_name = "invalid_cost_tags"


class CostTagsRequired(InvalidCostTags):
    """This key's calls must carry cost tags the call did not; the message names them."""

    reason_name = "cost_tags_required"


class BatchRejected(PayGateError):
    reason_name = "batch_rejected"


# --- the gateway's state ----------------------------------------------------------------------------
class MaintenanceMode(PayGateError):
    reason_name = "maintenance_mode"


class BackendUnavailable(PayGateError):
    reason_name = "backend_unavailable"


class CircuitOpen(BackendUnavailable):
    """The gateway's circuit breaker for this backend or tool is open (-32003): not run, not charged;
    `retry_after` is when it lets a probe call through."""

    reason_name = "circuit_breaker_open"

    @property
    def retry_after(self) -> float | None:
        value = self.data.get("retryAfterSeconds")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# --- x402 payments (docs/x402.md) -------------------------------------------------------------------
class PaymentRejected(PayGateError):
    """An x402 payment the gateway would not accept."""


class PaymentMismatch(PaymentRejected):
    reason_name = "payment_mismatch"


class PaymentReplayed(PaymentRejected):
    reason_name = "payment_replayed"


class PaymentInvalid(PaymentRejected):
    reason_name = "payment_invalid"


ERRORS_BY_REASON: dict[str, type[PayGateError]] = {
    cls.reason_name: cls
    for cls in (
        MissingApiKey, InvalidApiKey, KeyRevoked, KeyExpired, InvalidToken, TokenExpired, TokenRevoked,
        InvalidSignature, KeySuspended, TenantSuspended, IpNotAllowed, IpBlocked, CountryNotAllowed, AclDenied,
        InsufficientScope, PluginDenied, UnknownTool, DependencyNotMet, ApprovalRequired, ApprovalDenied,
        ApprovalTimeout, RateLimited, ToolRateLimited, TenantRateLimited, SessionRateLimited, ConcurrencyLimited,
        InsufficientCredits, SpendingLimitExceeded, QuotaExceeded, TeamBudgetExceeded, TeamQuotaExceeded,
        TenantQuotaExceeded, SpendCapExceeded, BudgetExceeded, BudgetThrottled, QuotaRuleExceeded, InvalidCostTags,
        CostTagsRequired, BatchRejected, MaintenanceMode, BackendUnavailable, CircuitOpen, PaymentMismatch,
        PaymentReplayed, PaymentInvalid,
    )
    if cls.reason_name is not None
}  # fmt: skip


def error_from(code: int, message: str, data: Any) -> PayGateError:
    """The typed error for a JSON-RPC error: by `data.reason`, else the base class (a protocol error,
    or a reason newer than this client)."""
    fields = data if isinstance(data, Mapping) else {}
    reason = fields.get("reason")
    if isinstance(reason, str):
        return ERRORS_BY_REASON.get(reason, PayGateError)(code, message, fields)
    if code == INVALID_PARAMS and message.startswith("Unknown tool"):
        # a gateway before the reason was added, or a server behind another proxy: a bare -32602
        return UnknownTool(code, message, fields)
    return PayGateError(code, message, fields)
