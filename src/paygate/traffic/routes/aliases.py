"""Tool aliases: GET/POST/DELETE /admin/tool-aliases (traffic/aliases.py; docs/traffic.md, "Tool aliases")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.traffic.aliases import MAX_ALIASES, ToolAliases

ToolName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f\x7f]+$")]


class AliasBody(Body):
    source: ToolName = Field(alias="from", description="the old name clients call")
    target: ToolName = Field(alias="to", description="the real tool it runs as")
    deprecation: bool | Annotated[str, Field(min_length=1, max_length=64)] = Field(
        default=True, description="true (deprecated from now), a date (ISO 8601 or HTTP), or false (no header)"
    )
    sunset: str | None = Field(default=None, min_length=1, max_length=64, description="ISO 8601 or HTTP date")
    link: str | None = Field(default=None, max_length=2048, pattern=r"^https?://[^\s<>\"\x00-\x1f\x7f]+$")


def router(guard: AdminGuard, aliases: ToolAliases) -> APIRouter:
    r = guard.router("traffic")

    @r.get("/admin/tool-aliases")
    async def list_aliases() -> dict[str, Any]:
        """Every tool alias with its call count since this instance started."""
        views = aliases.views()
        return {"aliases": views, "count": len(views), "max": MAX_ALIASES}

    @r.post("/admin/tool-aliases")
    async def set_alias(body: AliasBody, request: Request) -> dict[str, Any]:
        """Add or replace an alias: calls to `from` run as `to`, with deprecation headers."""
        alias, warnings = aliases.set(
            body.source, body.target, body.deprecation, body.sunset, body.link, actor(request)
        )
        return {"alias": alias.view(), "warnings": warnings}

    @r.delete("/admin/tool-aliases")
    async def delete_alias(
        request: Request, source: Annotated[str, Query(alias="from", min_length=1, max_length=128)]
    ) -> dict[str, Any]:
        """Remove an alias: calls to the old name then fail as an unknown tool would."""
        alias = aliases.remove(source, actor(request))
        return {"removed": alias.view()}

    return r
