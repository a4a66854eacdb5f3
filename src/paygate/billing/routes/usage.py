"""Usage and status: GET /usage (JSON or CSV), GET /status (admin), GET /balance (client).

The reads are `UsageService`'s (billing/usage.py); these routes parse and shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paygate.api.common import AdminGuard
from paygate.api.fields import NamespaceQuery
from paygate.asgi import api_key_from, header_map
from paygate.billing.usage import UsageService, usage_csv
from paygate.core.domain_errors import Invalid


def admin_router(guard: AdminGuard, service: UsageService) -> APIRouter:
    r = guard.router("usage")

    @r.get("/usage", response_model=None)
    async def usage(
        since: str | None = None, format: str = "json", limit: int = 10_000, namespace: NamespaceQuery = None
    ) -> Any:
        """Per-call usage events (keys masked), newest last; `format=csv` for a spreadsheet;
        `namespace` keeps one tenant's events."""
        if format not in ("json", "csv"):
            raise Invalid("Invalid request: format must be json or csv")
        rows = service.events(since, limit, namespace)
        if format == "json":
            return {"count": len(rows), "events": rows}
        return Response(
            usage_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="paygate-usage.csv"'},
        )

    @r.get("/status")
    async def status(namespace: NamespaceQuery = None) -> dict[str, Any]:
        """Keys, credits, per-tool and per-reason breakdowns, per namespace; `namespace` scopes it all."""
        return service.status(namespace)

    return r


def client_router(service: UsageService) -> APIRouter:
    r = APIRouter(tags=["client"])

    @r.get("/balance")
    async def balance(request: Request) -> dict[str, Any]:
        """The caller's own balance (X-API-Key or Bearer)."""
        return service.balance(api_key_from(header_map(request.scope)))

    return r
