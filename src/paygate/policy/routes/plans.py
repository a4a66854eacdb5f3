"""Usage plans: GET/POST/DELETE /admin/plans, POST /admin/keys/plan."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, find_key
from paygate.keys.service import KeyService
from paygate.policy.plans import PlanService

PlanName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
ToolName = Annotated[str, Field(min_length=1, max_length=200)]
_LIMIT = 10**12
_MAX_TOOLS = 1000


class PlanQuota(Body):
    daily_call_limit: int = Field(default=0, ge=0, le=_LIMIT)
    monthly_call_limit: int = Field(default=0, ge=0, le=_LIMIT)
    daily_credit_limit: int = Field(default=0, ge=0, le=_LIMIT)
    monthly_credit_limit: int = Field(default=0, ge=0, le=_LIMIT)


class PlanBody(Body):
    """Fields left out (or null) keep their current value (or the default, for a new plan)."""

    name: PlanName
    description: str | None = Field(default=None, max_length=500)
    rate_limit_per_min: int | None = Field(default=None, ge=0, le=1_000_000)
    quota: PlanQuota | None = None
    # a number or a decimal string; services.plans.parse_multiplier checks range and precision
    credit_multiplier: int | float | Annotated[str, Field(max_length=32)] | None = None
    allowed_tools: list[ToolName] | None = Field(default=None, max_length=_MAX_TOOLS)
    denied_tools: list[ToolName] | None = Field(default=None, max_length=_MAX_TOOLS)


class AssignPlan(Body):
    key: KeyRefField
    plan: PlanName | None


def router(guard: AdminGuard, keys: KeyService, plans: PlanService) -> APIRouter:
    r = guard.router("plans")

    @r.get("/admin/plans")
    async def list_plans() -> dict[str, Any]:
        """Every plan with the number of active keys on it."""
        listing = plans.list()
        return {"plans": listing, "count": len(listing)}

    @r.post("/admin/plans")
    async def upsert_plan(body: PlanBody, request: Request) -> JSONResponse:
        """Create a plan (201) or update the given fields of an existing one (200)."""
        changes = body.model_dump(by_alias=True, exclude_none=True, exclude={"name"})
        plan, created = plans.upsert(body.name, changes, actor(request))
        return JSONResponse(plan, status_code=201 if created else 200)

    @r.delete("/admin/plans")
    async def delete_plan(request: Request, name: Annotated[str, Query(min_length=1, max_length=64)]) -> dict[str, Any]:
        """Delete a plan no active key uses (409 otherwise)."""
        plan = plans.delete(name, actor(request))
        return {"message": f"Plan {name!r} deleted", "deleted": True, "plan": plan}

    @r.post("/admin/keys/plan")
    async def assign_plan(body: AssignPlan, request: Request) -> dict[str, Any]:
        """Put a key (or its alias) on a plan, or take it off with `plan: null`."""
        record = find_key(keys, body.key)
        previous = plans.assign(record, body.plan, actor(request))
        return {"keyMasked": record.masked, "plan": body.plan, "previousPlan": previous}

    return r
