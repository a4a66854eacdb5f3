"""GET/POST/DELETE /admin/quota-rules (rules/quota_rules.py, docs/money-rules.md#quota-rules)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, find_key
from paygate.keys.service import KeyService
from paygate.rules.quota_rules import MAX_LIMIT, QuotaRules

ToolName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f\x7f]+$")]


class QuotaRuleBody(Body):
    key: KeyRefField = Field(description='the API key or its alias, or "*" for every key')
    tool: ToolName | None = Field(default=None, description="one tool (absent: every tool)")
    period: Literal["daily", "weekly", "monthly"] = "daily"
    metric: Literal["calls", "credits"] = "calls"
    limit: int = Field(ge=1, le=MAX_LIMIT)
    burst_percent: int = Field(default=0, ge=0, le=100, description="hard cap = limit * (1 + burst/100)")
    action: Literal["deny", "warn", "throttle"] = "deny"


def router(guard: AdminGuard, rules: QuotaRules, keys: KeyService) -> APIRouter:
    r = guard.router("quota-rules")

    @r.get("/admin/quota-rules")
    async def list_rules() -> dict[str, Any]:
        """Every rule with its hard cap, its period and this period's counts; refusals and warnings so far."""
        return rules.view(time.time())

    @r.post("/admin/quota-rules", status_code=201)
    async def create_rule(body: QuotaRuleBody, request: Request) -> dict[str, Any]:
        """A new rule, enforced from the next call; its counts this period recounted from the usage log."""
        key = None if body.key == "*" else find_key(keys, body.key)
        fields = body.model_dump(by_alias=True, exclude={"key"})
        return {"rule": rules.create(fields, key, actor(request), time.time())}

    @r.delete("/admin/quota-rules")
    async def delete_rule(request: Request, id: Annotated[str, Query(min_length=1, max_length=64)]) -> dict[str, Any]:
        """Remove a rule: its counts are forgotten and it refuses nothing more."""
        return rules.delete(id, actor(request))

    return r
