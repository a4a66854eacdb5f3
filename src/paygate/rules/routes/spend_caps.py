"""GET/POST /admin/spend-caps (rules/spend_caps.py, docs/money-rules.md#spend-caps)."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.rules.spend_caps import MAX_CAP, MAX_RESUME, SpendCaps


class SpendCapsBody(Body):
    server_daily_credit_cap: int | None = Field(default=None, ge=0, le=MAX_CAP, description="credits/day, every key")
    server_daily_call_cap: int | None = Field(default=None, ge=0, le=MAX_CAP, description="calls/day, every key")
    hourly_call_limit: int | None = Field(default=None, ge=0, le=MAX_CAP, description="calls/hour, each key")
    hourly_credit_limit: int | None = Field(default=None, ge=0, le=MAX_CAP, description="credits/hour, each key")
    breach_action: Literal["deny", "suspend"] | None = None
    auto_resume_after_seconds: int | None = Field(default=None, ge=0, le=MAX_RESUME, description="0: never")


def router(guard: AdminGuard, caps: SpendCaps) -> APIRouter:
    r = guard.router("spend-caps")

    @r.get("/admin/spend-caps")
    async def get_spend_caps() -> dict[str, Any]:
        """The caps, today's server-wide counts, the keys the caps suspended and the refusals so far."""
        return caps.view(time.time())

    @r.post("/admin/spend-caps")
    async def set_spend_caps(body: SpendCapsBody, request: Request) -> dict[str, Any]:
        """Change any of the caps (0: none), breachAction or autoResumeAfterSeconds; kept in the store."""
        changes = body.model_dump(by_alias=True, exclude_none=True)
        return caps.configure(changes, actor(request), time.time())

    return r
