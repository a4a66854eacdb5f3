"""GET/POST /admin/adaptive-rates (rules/adaptive.py, docs/money-rules.md#adaptive-rates)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.rules.adaptive import AdaptiveRates


class AdaptiveRatesBody(Body):
    enabled: bool | None = None
    error_rate_threshold: float | None = Field(default=None, ge=0.01, le=1.0)
    min_calls: int | None = Field(default=None, ge=1, le=10_000)
    window_seconds: int | None = Field(default=None, ge=10, le=86_400)
    tighten_factor: float | None = Field(default=None, ge=0.01, le=1.0)
    boost_factor: float | None = Field(default=None, ge=1.0, le=10.0)
    cooldown_seconds: int | None = Field(default=None, ge=1, le=86_400)
    max_tracked_keys: int | None = Field(default=None, ge=1, le=1_000_000)


def router(guard: AdminGuard, adaptive: AdaptiveRates) -> APIRouter:
    r = guard.router("adaptive-rates")

    @r.get("/admin/adaptive-rates")
    async def get_adaptive_rates() -> dict[str, Any]:
        """The settings, and the keys whose rate limit is tightened or boosted now (masked), until when."""
        return adaptive.view()

    @r.post("/admin/adaptive-rates")
    async def set_adaptive_rates(body: AdaptiveRatesBody, request: Request) -> dict[str, Any]:
        """Change any of the settings; kept in the store."""
        return adaptive.configure(body.model_dump(by_alias=True, exclude_none=True), actor(request))

    return r
