"""A key holder's own low-balance alert: GET/POST/DELETE /balance/alerts (X-API-Key or Bearer, like
GET /balance). The alert is checked off the hot path by `BalanceAlerts` (alerts/balance.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.alerts.balance import MAX_THRESHOLD, BalanceAlerts
from paygate.api.common import Body
from paygate.asgi import api_key_from, header_map
from paygate.core.domain_errors import Invalid


class BalanceAlertBody(Body):
    low_credit_threshold: int = Field(default=10, ge=0, le=MAX_THRESHOLD)
    webhook_url: str | None = Field(default=None, max_length=2048, description="not supported: must be null")
    enabled: bool = True


def client_router(service: BalanceAlerts) -> APIRouter:
    r = APIRouter(tags=["client"])

    def caller(request: Request) -> str | None:
        return api_key_from(header_map(request.scope))

    @r.get("/balance/alerts")
    async def get_alert(request: Request) -> dict[str, Any]:
        """The caller's low-balance alert (or `configured: false`) and its current credits."""
        return service.view(caller(request))

    @r.post("/balance/alerts")
    async def set_alert(body: BalanceAlertBody, request: Request) -> dict[str, Any]:
        """Set or replace the caller's alert: `key.balance_low` is published once each time the balance
        falls to or below `lowCreditThreshold`. `enabled: false` removes it."""
        raw = caller(request)
        service.key_of(raw)  # 401 before 400: an unknown caller learns nothing of the rules
        if body.webhook_url is not None:
            raise Invalid(
                "webhookUrl is not supported: key.balance_low goes to the gateway's webhooks, "
                "including the key's own (POST /keys/webhook, set by an admin)"
            )
        if not body.enabled:
            service.remove(raw)
            return {"configured": False, "message": "Alert disabled"}
        return service.set(raw, body.low_credit_threshold)

    @r.delete("/balance/alerts")
    async def remove_alert(request: Request) -> dict[str, Any]:
        """Remove the caller's alert (also when it had none)."""
        service.remove(caller(request))
        return {"configured": False, "message": "Alert removed"}

    return r
