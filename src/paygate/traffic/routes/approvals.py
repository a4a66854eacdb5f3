"""Approval workflows: GET/POST/DELETE /admin/approval-workflows (traffic/approvals.py; docs/traffic.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.core.domain_errors import Invalid
from paygate.traffic.approvals import Approvals


class RuleBody(Body):
    name: str = Field(min_length=1, max_length=64)
    condition: Literal["cost_threshold", "tool_match", "key_match"]
    value: Annotated[str, Field(min_length=1, max_length=128)] | Annotated[int, Field(ge=1, le=10**12)]
    timeout_seconds: int = Field(default=3600, ge=1, le=86_400)


class DecisionBody(Body):
    action: Literal["approve", "deny"]
    request_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=500)


def router(guard: AdminGuard, approvals: Approvals) -> APIRouter:
    r = guard.router("traffic")

    @r.get("/admin/approval-workflows")
    async def show() -> dict[str, Any]:
        """The rules (with how often each fired), the calls waiting on this instance, and the outcomes."""
        return approvals.view()

    @r.post("/admin/approval-workflows")
    async def act(body: RuleBody | DecisionBody, request: Request) -> dict[str, Any]:
        """Create a rule, or approve / deny a waiting call (`action`)."""
        who = actor(request)
        if isinstance(body, DecisionBody):
            return approvals.decide(body.request_id, body.action == "approve", who, body.reason)
        if body.condition == "cost_threshold" and not isinstance(body.value, int):
            raise Invalid("Invalid request: value: a cost_threshold is a number of credits")
        if body.condition != "cost_threshold" and not isinstance(body.value, str):
            raise Invalid(f"Invalid request: value: a {body.condition} is a string")
        rule = approvals.add_rule(body.name, body.condition, body.value, body.timeout_seconds, who)
        return {"rule": rule.view(0)}

    @r.delete("/admin/approval-workflows")
    async def delete_rule(
        request: Request, rule_id: Annotated[str, Query(alias="id", min_length=1, max_length=64)]
    ) -> dict[str, Any]:
        """Delete a rule; calls already waiting under it still wait for their decision."""
        return {"removed": approvals.remove_rule(rule_id, actor(request)).view(0)}

    return r
