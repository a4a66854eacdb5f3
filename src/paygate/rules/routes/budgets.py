"""GET/POST/DELETE /admin/budget-policies (rules/budgets.py, docs/money-rules.md#budget-policies)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.rules.budget_policy import MAX_BUDGET, MAX_WINDOW_MINUTES
from paygate.rules.budgets import BudgetPolicies

IdQuery = Annotated[str, Query(min_length=1, max_length=64)]


class BudgetPolicyBody(Body):
    id: str | None = Field(default=None, min_length=1, max_length=64, description="change this policy")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    target: str | None = Field(
        default=None, min_length=1, max_length=210, description='"*", "namespace:<name>" or "key:<key or alias>"'
    )
    daily_budget: int | None = Field(default=None, ge=0, le=MAX_BUDGET, description="credits/UTC day (0: none)")
    monthly_budget: int | None = Field(default=None, ge=0, le=MAX_BUDGET, description="credits/UTC month (0: none)")
    burn_rate_limit: int | None = Field(default=None, ge=0, le=MAX_BUDGET, description="credits/minute (0: none)")
    window_minutes: int | None = Field(default=None, ge=1, le=MAX_WINDOW_MINUTES)
    action: Literal["alert", "throttle", "deny"] | None = None


def router(guard: AdminGuard, policies: BudgetPolicies) -> APIRouter:
    r = guard.router("budget-policies")

    @r.get("/admin/budget-policies")
    async def list_budget_policies() -> dict[str, Any]:
        """Every policy with its target's spend today and this month, burn rate, remaining and forecast."""
        return policies.view(time.time())

    @r.post("/admin/budget-policies")
    async def set_budget_policy(body: BudgetPolicyBody, request: Request) -> JSONResponse:
        """Create a policy (201), or change the one named by `id` (200); kept in the store."""
        doc = body.model_dump(by_alias=True, exclude_none=True)
        view = policies.create(doc, actor(request), time.time())
        return JSONResponse({"policy": view}, status_code=200 if "id" in doc else 201)

    @r.delete("/admin/budget-policies")
    async def delete_budget_policy(request: Request, id: IdQuery) -> dict[str, Any]:
        """Remove policy `?id=`."""
        return {"removed": policies.delete(id, actor(request), time.time())}

    return r
