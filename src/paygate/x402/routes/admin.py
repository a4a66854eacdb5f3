"""GET /admin/x402 (viewer), POST /admin/x402 (admin): x402 pay-per-call's settings, counts and recent
settlements; switch it on or off and change its payee and prices at runtime (x402/service.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.core.domain_errors import Conflict

if TYPE_CHECKING:  # the service (and the x402 package) is imported only when x402 is configured
    from paygate.x402.service import X402Service


class X402Change(Body):
    """Any of these; the rest stay as they are. The result is validated as a whole (config_x402.py)."""

    enabled: bool | None = None
    pay_to: str | None = Field(default=None, min_length=3, max_length=128)
    network: str | None = Field(default=None, max_length=80)
    asset: str | None = Field(default=None, min_length=3, max_length=128)
    asset_decimals: int | None = Field(default=None, ge=0, le=30)
    asset_name: str | None = Field(default=None, min_length=1, max_length=64)
    asset_version: str | None = Field(default=None, min_length=1, max_length=16)
    credits_per_dollar: int | None = Field(default=None, ge=1, le=10**12)
    max_timeout_seconds: int | None = Field(default=None, ge=5, le=3600)


def router(guard: AdminGuard, x402: X402Service | None) -> APIRouter:
    r = guard.router("x402")

    @r.get("/admin/x402")
    async def x402_view() -> dict[str, Any]:
        """x402's settings (without the facilitator's credential), its counts and the latest settlements."""
        if x402 is None:
            return {"configured": False, "enabled": False}
        return {"configured": True, **x402.view()}

    @r.post("/admin/x402")
    async def x402_update(body: X402Change, request: Request) -> dict[str, Any]:
        """Switch x402 on or off, or change its payee, token or prices, at once (audited as `x402.updated`)."""
        if x402 is None:
            raise Conflict("x402 is not configured: set x402 {payTo, asset, network, …} in the config file")
        changes = body.model_dump(by_alias=True, exclude_none=True)
        return {"configured": True, **x402.update(changes, actor(request))}

    return r
