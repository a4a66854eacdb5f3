"""Every deny reason, once: its JSON-RPC code, HTTP status and message.

The gate, the HTTP layer, metrics and the docs all read `DENY_REASONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PAYMENT_REQUIRED: Final = -32402
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
BACKEND_UNAVAILABLE: Final = -32003
TOOL_TIMEOUT: Final = -32004
CONCURRENCY_LIMITED: Final = -32005  # too many calls in flight (traffic/concurrency.py)
REQUEST_CANCELLED: Final = -32800  # the client cancelled it (the JSON-RPC "request cancelled" convention)


@dataclass(frozen=True, slots=True)
class DenyReason:
    name: str
    code: int
    http_status: int
    message: str


_REASONS: Final = (
    DenyReason("missing_api_key", PAYMENT_REQUIRED, 401, "API key required (X-API-Key or Bearer)"),
    DenyReason("invalid_api_key", PAYMENT_REQUIRED, 401, "API key not recognised"),
    DenyReason("key_revoked", PAYMENT_REQUIRED, 401, "API key has been revoked"),
    DenyReason("key_suspended", PAYMENT_REQUIRED, 403, "API key is suspended"),
    DenyReason("tenant_suspended", PAYMENT_REQUIRED, 403, "The key's tenant is suspended"),
    DenyReason("api_key_expired", PAYMENT_REQUIRED, 401, "API key has expired"),
    DenyReason("invalid_token", PAYMENT_REQUIRED, 401, "Token not recognised (malformed, forged or unknown)"),
    DenyReason("token_expired", PAYMENT_REQUIRED, 401, "Token has expired"),
    DenyReason("token_revoked", PAYMENT_REQUIRED, 401, "Token has been revoked"),
    DenyReason("ip_not_allowed", PAYMENT_REQUIRED, 403, "Client IP is not in the key's allowlist"),
    DenyReason("ip_blocked", PAYMENT_REQUIRED, 403, "Requests from this address are refused (global IP access rules)"),
    DenyReason("invalid_signature", PAYMENT_REQUIRED, 401, "This key's requests must carry a valid X-Signature"),
    DenyReason("country_not_allowed", PAYMENT_REQUIRED, 403, "Requests from this country are not allowed for this key"),
    DenyReason("tool_not_allowed", PAYMENT_REQUIRED, 403, "Tool is not allowed for this key"),
    DenyReason("insufficient_scope", PAYMENT_REQUIRED, 403, "The token's scopes do not cover this tool"),
    DenyReason("unknown_tool", INVALID_PARAMS, 404, "Unknown tool"),
    DenyReason("rate_limited", PAYMENT_REQUIRED, 429, "Rate limit exceeded for this key"),
    DenyReason("tool_rate_limited", PAYMENT_REQUIRED, 429, "Rate limit exceeded for this tool"),
    DenyReason("tenant_rate_limited", PAYMENT_REQUIRED, 429, "Rate limit exceeded for the key's tenant"),
    DenyReason("insufficient_credits", PAYMENT_REQUIRED, 402, "Insufficient credits"),
    DenyReason("spending_limit_exceeded", PAYMENT_REQUIRED, 402, "Spending limit reached for this key"),
    DenyReason("quota_exceeded", PAYMENT_REQUIRED, 429, "Usage quota exceeded"),
    DenyReason("team_budget_exceeded", PAYMENT_REQUIRED, 402, "The key's team has used up its budget"),
    DenyReason("team_quota_exceeded", PAYMENT_REQUIRED, 429, "The key's team has reached its usage quota"),
    DenyReason("tenant_quota_exceeded", PAYMENT_REQUIRED, 429, "The key's tenant has reached its usage quota"),
    DenyReason("spend_cap_exceeded", PAYMENT_REQUIRED, 429, "Spend cap reached (server-wide daily or per-key hourly)"),
    DenyReason("budget_exceeded", PAYMENT_REQUIRED, 429, "Budget policy exceeded (daily, monthly or burn rate)"),
    DenyReason("budget_throttled", PAYMENT_REQUIRED, 429, "Burn rate over a budget policy's limit: retry later"),
    DenyReason("quota_rule_exceeded", PAYMENT_REQUIRED, 429, "Quota rule reached (daily, weekly or monthly)"),
    DenyReason("invalid_cost_tags", INVALID_PARAMS, 400, "X-Cost-Tags refused"),
    DenyReason("cost_tags_required", INVALID_PARAMS, 400, "Cost tags required for this key"),
    DenyReason("batch_rejected", PAYMENT_REQUIRED, 409, "Another call of the same tools/call_batch was refused"),
    DenyReason("maintenance_mode", PAYMENT_REQUIRED, 503, "Server is in maintenance mode"),
    DenyReason("backend_unavailable", BACKEND_UNAVAILABLE, 503, "Backend MCP server is unavailable"),
    DenyReason("dependency_not_met", PAYMENT_REQUIRED, 424, "A tool this one depends on was not called successfully"),
    DenyReason("approval_required", PAYMENT_REQUIRED, 403, "This call needs an admin's approval"),
    DenyReason("approval_denied", PAYMENT_REQUIRED, 403, "An admin did not approve this call"),
    DenyReason("approval_timeout", PAYMENT_REQUIRED, 408, "No admin decided on this call in time"),
    DenyReason("concurrency_limited", CONCURRENCY_LIMITED, 429, "Too many calls in flight"),
    DenyReason("plugin_denied", PAYMENT_REQUIRED, 403, "Refused by a plugin"),
)

DENY_REASONS: Final[dict[str, DenyReason]] = {r.name: r for r in _REASONS}


def reason(name: str) -> DenyReason:
    """Look a reason up; an unknown name is a programming error."""
    return DENY_REASONS[name]
