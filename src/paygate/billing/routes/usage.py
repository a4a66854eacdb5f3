"""Usage and status: GET /usage (JSON or CSV), GET /status (admin), GET /balance (client)."""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygate.api.common import ApiError, require_admin
from paygate.core.keys import hash_key
from paygate.core.records import UsageEvent
from paygate.core.values import iso_time
from paygate.mcp.http_io import api_key_from
from paygate.policy.routes.namespaces import NamespaceQuery, namespace_stats
from paygate.runtime import Runtime

MAX_EVENTS = 100_000  # the most /usage returns, and the newest events /status breaks down per tool
USAGE_COLUMNS = ("timestamp", "apiKey", "keyName", "tool", "creditsCharged", "allowed", "denyReason", "namespace",
                 "requestId")


def _parse_since(since: str | None) -> float | None:
    """ISO 8601; without a zone, UTC (as /keys/usage), never the server's local time."""
    if since is None:
        return None
    try:
        parsed = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, "Invalid request: since must be an ISO 8601 date-time") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _csv_cell(value: Any) -> Any:
    # A text cell starting = + - @ (or tab / CR) is run as a formula by spreadsheets (CSV injection);
    # a leading ' makes it text, as the key export does. Key names are admin-chosen, tool names the backend's.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _event_row(e: UsageEvent) -> dict[str, Any]:
    return {"timestamp": iso_time(e.timestamp), "apiKey": e.key_masked, "keyName": e.key_name, "tool": e.tool,
            "creditsCharged": e.credits, "allowed": e.allowed, "denyReason": e.deny_reason,
            "namespace": e.namespace, "requestId": e.request_id}


def admin_router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["usage"])

    @r.get("/usage", response_model=None)
    async def usage(since: str | None = None, format: str = "json", limit: int = 10_000,
              namespace: NamespaceQuery = None) -> Any:
        """Per-call usage events (keys masked), newest last; `format=csv` for a spreadsheet;
        `namespace` keeps one tenant's events."""
        if format not in ("json", "csv"):
            raise ApiError(400, "Invalid request: format must be json or csv")
        if not 1 <= limit <= MAX_EVENTS:
            raise ApiError(400, f"Invalid request: limit must be between 1 and {MAX_EVENTS}")
        events = rt.store.query_usage(_parse_since(since), limit, namespace=namespace)
        rows = [_event_row(e) for e in events]
        if format == "json":
            return {"count": len(rows), "events": rows}
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=USAGE_COLUMNS)
        writer.writeheader()
        writer.writerows({name: _csv_cell(value) for name, value in row.items()} for row in rows)
        return Response(buffer.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="paygate-usage.csv"'})

    @r.get("/status")
    async def status(namespace: NamespaceQuery = None) -> dict[str, Any]:
        """Keys, credits, per-tool and per-reason breakdowns, per namespace; `namespace` scopes it all."""
        keys = rt.store.list_keys()
        events = rt.store.query_usage(None, MAX_EVENTS, namespace=namespace)
        if namespace is not None:
            keys = [k for k in keys if k.namespace == namespace]
        per_tool: dict[str, dict[str, int]] = {}
        deny_reasons: Counter[str] = Counter()
        for e in events:
            stats = per_tool.setdefault(e.tool, {"calls": 0, "credits": 0, "denied": 0})
            if e.allowed:
                stats["calls"] += 1
                stats["credits"] += e.credits
            else:
                stats["denied"] += 1
                deny_reasons[e.deny_reason or "unknown"] += 1
        return {
            "name": rt.settings.name,
            "uptime": int(time.time() - rt.started),
            "backend": {"transport": rt.transport, "ready": rt.backend.ready, "tools": len(rt.backend.tools)},
            "activeKeys": sum(1 for k in keys if k.active),
            "totalKeys": len(keys),
            "totalCredits": sum(k.credits for k in keys if k.active),
            "totalSpent": sum(k.total_spent for k in keys),
            "totalCalls": sum(k.total_calls for k in keys),
            "activeSessions": len(rt.sessions),
            "perTool": per_tool,
            "denyReasons": dict(deny_reasons),
            "shadowMode": rt.settings.shadow_mode,
            "namespaces": namespace_stats(keys),
            **({"filteredNamespace": namespace} if namespace is not None else {}),
        }

    return r


def client_router(rt: Runtime) -> APIRouter:
    r = APIRouter(tags=["client"])

    @r.get("/balance")
    async def balance(request: Request) -> dict[str, Any]:
        """The caller's own balance (X-API-Key or Bearer)."""
        raw = api_key_from({k.lower(): v for k, v in request.scope["headers"]})
        if raw is None:
            raise ApiError(401, "API key required (X-API-Key or Bearer)")
        record = rt.store.get_key(hash_key(raw))
        if record is None or not record.active:
            raise ApiError(401, "Invalid API key")
        # What the gate applies: the key's own settings merged with its group's and plan's.
        policy = rt.billing.policy_for(record)
        limit = policy.spending_limit
        quota = rt.billing.quota_status(record)
        return {
            "name": record.name, "credits": record.credits, "totalSpent": record.total_spent,
            "totalCalls": record.total_calls, "lastUsedAt": iso_time(record.last_used_at),
            "suspended": record.suspended, "expiresAt": iso_time(record.expires_at),
            "allowedTools": record.allowed_tools or sorted(policy.allowed_tools),
            "deniedTools": [*record.denied_tools, *sorted(policy.denied_tools - set(record.denied_tools))],
            "quota": policy.quota, "quotaUsage": {"daily": quota["daily"], "monthly": quota["monthly"]},
            "spendingLimit": limit or None,
            "remainingBudget": max(limit - record.total_spent, 0) if limit else None,
        }

    return r
