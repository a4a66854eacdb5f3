"""Usage reads for GET /usage, GET /status and GET /balance: the usage log, gateway totals, and a
client's own balance with the policy the gate applies to it. Read-only; the routes only parse and
shape (billing/routes/usage.py)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from paygate.billing.service import BillingService
from paygate.config import Settings
from paygate.core.csv_cells import csv_text
from paygate.core.domain_errors import Invalid, Unauthenticated
from paygate.core.keys import hash_key
from paygate.core.records import KeyRecord, UsageEvent
from paygate.core.values import iso_time
from paygate.credentials.resolver import Credentials, Rejected
from paygate.policy.namespaces import namespace_stats
from paygate.serving import ServingState
from paygate.store.base import Store
from paygate.store.roles import KeyTable

MAX_EVENTS = 100_000  # the most /usage returns, and the newest events /status breaks down per tool
USAGE_COLUMNS = (
    "timestamp",
    "apiKey",
    "keyName",
    "tool",
    "creditsCharged",
    "allowed",
    "denyReason",
    "namespace",
    "requestId",
)


def parse_since(since: str | None) -> float | None:
    """ISO 8601; without a zone, UTC (as /keys/usage), never the server's local time."""
    if since is None:
        return None
    try:
        parsed = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid("Invalid request: since must be an ISO 8601 date-time") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def event_row(e: UsageEvent) -> dict[str, Any]:
    return {
        "timestamp": iso_time(e.timestamp),
        "apiKey": e.key_masked,
        "keyName": e.key_name,
        "tool": e.tool,
        "creditsCharged": e.credits,
        "allowed": e.allowed,
        "denyReason": e.deny_reason,
        "namespace": e.namespace,
        "requestId": e.request_id,
    }


def usage_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV (CRLF line ends), every cell made safe for spreadsheets (core/csv_cells.py)."""
    return csv_text(USAGE_COLUMNS, ([row.get(c) for c in USAGE_COLUMNS] for row in rows), "\r\n")


def client_record(keys: KeyTable, raw: str | None, credentials: Credentials | None = None) -> KeyRecord:
    """The live key a client presents (X-API-Key or Bearer) on its self-service routes, or `Unauthenticated`
    (a 401): missing, unknown and revoked keys alike.

    With `credentials`, an OAuth access token (the holder's own sign-in, e.g. the portal's) stands for the
    key it was issued for; a refused token is a 401 too. Scoped tokens are not taken here: the admin issues
    them to whoever the key holder delegates calls to, which is not a say over the key's account."""
    if raw is None:
        raise Unauthenticated("API key required (X-API-Key or Bearer)")
    resolved = None if credentials is None else credentials.resolve(raw, time.time())
    if isinstance(resolved, Rejected):
        raise Unauthenticated(f"Invalid token: {resolved.detail or resolved.reason}")
    if resolved is not None and resolved.kind != "oauth":
        raise Unauthenticated("This token cannot be used here: present the API key or an OAuth access token")
    record = keys.get_key(hash_key(raw) if resolved is None else resolved.key_hash)
    if record is None or not record.active:
        raise Unauthenticated("Invalid API key")
    return record


@dataclass(slots=True, eq=False)
class UsageService:
    store: Store
    billing: BillingService
    settings: Settings
    serving: ServingState
    transport: str
    active_sessions: Callable[[], int]

    def events(self, since: str | None, limit: int, namespace: str | None) -> list[dict[str, Any]]:
        """Usage events (keys masked), newest last, as rows; a 400 kind for a bad limit or `since`."""
        if not 1 <= limit <= MAX_EVENTS:
            raise Invalid(f"Invalid request: limit must be between 1 and {MAX_EVENTS}")
        return [event_row(e) for e in self.store.query_usage(parse_since(since), limit, namespace=namespace)]

    def status(self, namespace: str | None) -> dict[str, Any]:
        """Keys, credits, per-tool and per-reason breakdowns, per namespace; `namespace` scopes it all."""
        keys = self.store.list_keys()
        events = self.store.query_usage(None, MAX_EVENTS, namespace=namespace)
        if namespace is not None:
            keys = [k for k in keys if k.namespace == namespace]
        per_tool: dict[str, dict[str, int]] = {}
        deny_reasons: Counter[str] = Counter()
        for e in events:
            stats = per_tool.setdefault(e.tool, {"calls": 0, "credits": 0, "denied": 0})
            stats["calls"] += 1  # every attempt; `denied` is the subset refused, as the reference counts
            if e.allowed:
                stats["credits"] += e.credits
            else:
                stats["denied"] += 1
                deny_reasons[e.deny_reason or "unknown"] += 1
        backend = self.serving.backend
        return {
            "name": self.settings.name,
            "uptime": self.serving.uptime(time.time()),
            "backend": {"transport": self.transport, "ready": backend.ready, "tools": len(backend.tools)},
            "activeKeys": sum(1 for k in keys if k.active),
            "totalKeys": len(keys),
            "totalCredits": sum(k.credits for k in keys if k.active),
            "totalSpent": sum(k.total_spent for k in keys),
            "totalCalls": sum(k.total_calls for k in keys),
            "activeSessions": self.active_sessions(),
            "perTool": per_tool,
            "denyReasons": dict(deny_reasons),
            "shadowMode": self.settings.shadow_mode,
            "namespaces": namespace_stats(keys),
            **({"filteredNamespace": namespace} if namespace is not None else {}),
        }

    def balance(self, raw: str | None) -> dict[str, Any]:
        """The balance of the key `raw` (a client's own), with what the gate applies: the key's settings
        merged with its group's and plan's."""
        record = client_record(self.store, raw, self.billing.credentials)
        policy = self.billing.policy_for(record)
        limit = policy.spending_limit
        quota = self.billing.quota_status(record)
        return {
            "name": record.name,
            "credits": record.credits,
            "totalSpent": record.total_spent,
            "totalCalls": record.total_calls,
            "lastUsedAt": iso_time(record.last_used_at),
            "suspended": record.suspended,
            "expiresAt": iso_time(record.expires_at),
            "allowedTools": record.allowed_tools or sorted(policy.allowed_tools),
            "deniedTools": [*record.denied_tools, *sorted(policy.denied_tools - set(record.denied_tools))],
            "quota": policy.quota,
            "quotaUsage": {"daily": quota["daily"], "monthly": quota["monthly"]},
            "spendingLimit": limit or None,
            "remainingBudget": max(limit - record.total_spent, 0) if limit else None,
            "tags": dict(record.tags),
            "ipAllowlist": list(record.ip_allowlist),
            "namespace": record.namespace,
        }
