"""GET /admin/retry-policy (viewer): the retry policy, the retry budget's refusals and per-tool stats.
POST /admin/retry-policy (admin): change any of its fields at runtime; kept in the store (traffic/retry.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.traffic.retry import Retries

ErrorCode = Annotated[int, Field(ge=-2_147_483_648, le=2_147_483_647)]
ToolName = Annotated[str, Field(min_length=1, max_length=200)]


class RetryOn(Body):
    transport: bool | None = Field(default=None, description="retry an unavailable backend")
    error_codes: list[ErrorCode] | None = Field(default=None, max_length=50, description="JSON-RPC error codes")


class RetryPolicyChange(Body):
    """Any of these; the rest stay as they are."""

    enabled: bool | None = None
    max_retries: int | None = Field(default=None, ge=0, le=10)
    base_backoff_ms: int | None = Field(default=None, ge=0, le=60_000)
    max_backoff_ms: int | None = Field(default=None, ge=0, le=300_000)
    retry_on: RetryOn | None = None
    idempotent_tools: list[ToolName] | None = Field(default=None, max_length=1000)
    retry_budget_percent: float | None = Field(default=None, ge=0, le=100)


def router(guard: AdminGuard, retries: Retries) -> APIRouter:
    r = guard.router("traffic")

    @r.get("/admin/retry-policy")
    async def retry_policy_view() -> dict[str, Any]:
        """The policy, whether it is active, the retries sent and refused by the budget, per-tool stats."""
        return retries.view()

    @r.post("/admin/retry-policy")
    async def retry_policy_update(body: RetryPolicyChange, request: Request) -> dict[str, Any]:
        """Change the retry policy at once (audited as `retry_policy.updated`)."""
        changes = body.model_dump(by_alias=True, exclude_none=True)
        return retries.update(changes, actor(request))

    return r
