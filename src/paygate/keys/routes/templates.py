"""Key templates: GET/POST /keys/templates, POST /keys/templates/delete (used by `template` on POST /keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.api.fields import NAME_PATTERN, NAMESPACE_PATTERN, AutoTopupConfig, IpList, QuotaLimits, Tags, ToolList
from paygate.core.documents import readable
from paygate.core.values import MAX_CREDITS, iso_time
from paygate.keys.templates import KIND, MAX_TEMPLATES, TemplateService

TEN_YEARS = 10 * 365 * 86400


class TemplateBody(Body):
    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = Field(default=None, max_length=500)
    credits: int | None = Field(default=None, ge=0, le=MAX_CREDITS)
    allowed_tools: ToolList | None = None
    denied_tools: ToolList | None = None
    quota: QuotaLimits | None = None
    ip_allowlist: IpList | None = None
    spending_limit: int | None = Field(default=None, ge=0, le=MAX_CREDITS)
    tags: Tags | None = None
    namespace: str | None = Field(default=None, min_length=1, max_length=64, pattern=NAMESPACE_PATTERN)
    expiry_ttl_seconds: int | None = Field(default=None, ge=0, le=TEN_YEARS, description="0 = never expires")
    auto_topup: AutoTopupConfig | None = None  # the shape POST /keys/auto-topup stores


class TemplateName(Body):
    name: str = Field(pattern=NAME_PATTERN)


def template_view(t: dict[str, Any]) -> dict[str, Any]:
    return {**t, "createdAt": iso_time(t["createdAt"]), "updatedAt": iso_time(t["updatedAt"])}


def router(guard: AdminGuard, templates: TemplateService) -> APIRouter:
    r = guard.router("templates")

    @r.get("/keys/templates")
    async def list_templates() -> dict[str, Any]:
        """Every key template, by name."""
        found = readable(KIND, templates.list(), template_view)
        return {"templates": found, "count": len(found), "max": MAX_TEMPLATES}

    @r.post("/keys/templates")
    async def save_template(body: TemplateBody, request: Request) -> JSONResponse:
        """Create a template (201) or replace the one with this name (200)."""
        # Only the fields given are stored: those are the defaults a key made from it inherits.
        fields = body.model_dump(by_alias=True, exclude_none=True, exclude={"name"})
        saved, created = templates.save(body.name, fields, actor(request))
        verb = "created" if created else "updated"
        return JSONResponse(
            {"template": template_view(saved), "message": f"Template {verb}"}, status_code=201 if created else 200
        )

    @r.post("/keys/templates/delete")
    async def delete_template(body: TemplateName, request: Request) -> dict[str, Any]:
        """Delete a template (keys made from it keep their settings)."""
        templates.delete(body.name, actor(request))
        return {"name": body.name, "deleted": True, "message": "Template deleted"}

    return r
