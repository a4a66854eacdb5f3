"""Guardrails: GET/POST/DELETE /admin/guardrails and GET/DELETE /admin/guardrails/violations
(content/guardrails.py, content/guardrails_admin.py; docs/policy.md#guardrails)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.content.guardrails_admin import GuardrailsAdmin
from paygate.core.domain_errors import Invalid

RuleQuery = Annotated[str, Query(alias="id", min_length=1, max_length=64)]
ToolPattern = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f\x7f]+$")]


class GuardrailBody(Body):
    """Either `{enabled}` alone (the runtime toggle), or a rule: `id` names one to change (a built-in or
    your own); without `id`, or with a new one, a custom rule is added (`pattern` required)."""

    id: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    pattern: str | None = Field(default=None, min_length=1, max_length=500)
    action: Literal["log", "warn", "block", "redact"] | None = None
    scope: Literal["input", "output", "both"] | None = None
    tools: list[ToolPattern] | None = Field(default=None, max_length=200)
    enabled: bool | None = None


def router(guard: AdminGuard, admin: GuardrailsAdmin) -> APIRouter:
    r = guard.router("content")

    @r.get("/admin/guardrails")
    async def get_guardrails() -> dict[str, Any]:
        """The toggle, every rule (the eight built-ins and your own) and how many violations are kept."""
        return admin.view()

    @r.post("/admin/guardrails")
    async def set_guardrail(body: GuardrailBody, request: Request) -> dict[str, Any]:
        """Switch the guardrails on or off (`{enabled}` alone), or add / change a rule."""
        fields = body.model_dump(exclude_unset=True, exclude_none=True)
        if set(fields) == {"enabled"}:
            admin.toggle(bool(fields["enabled"]), actor(request))
            return admin.view()
        if not fields:
            raise Invalid("Invalid request: give {enabled} or a rule")
        return {"rule": admin.set_rule(fields, actor(request)).view()}

    @r.delete("/admin/guardrails")
    async def delete_guardrail(
        request: Request, id: Annotated[str, Query(min_length=1, max_length=64)]
    ) -> dict[str, Any]:
        """Remove a custom rule (`?id=`); a built-in goes back to its default (off)."""
        return {"removed": admin.remove(id, actor(request)).view()}

    @r.get("/admin/guardrails/violations")
    async def list_violations(
        tool: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
        rule_id: Annotated[str | None, Query(alias="ruleId", min_length=1, max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Violations, newest first (never the matched text), filtered by `tool` and/or `ruleId`."""
        return admin.violations(tool, rule_id, limit)

    @r.delete("/admin/guardrails/violations")
    async def clear_violations(request: Request) -> dict[str, Any]:
        """Forget every recorded violation (the events in the audit log stay)."""
        return {"cleared": admin.clear_violations(actor(request))}

    return r
