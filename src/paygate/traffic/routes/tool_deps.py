"""Tool dependencies: GET/POST/DELETE /admin/tool-deps (traffic/tool_deps.py; docs/traffic.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.traffic.tool_deps import MAX_UPSTREAM, ToolDependencies

ToolName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f\x7f]+$")]


class DependencyBody(Body):
    tool: ToolName = Field(description="the tool the rule guards")
    depends_on: list[ToolName] = Field(max_length=MAX_UPSTREAM, description="tools the key must call first")
    hard: bool = Field(default=True, description="refuse (true) or only warn (false) when unmet")
    window_seconds: int = Field(default=3600, ge=1, le=30 * 86_400)


def router(guard: AdminGuard, deps: ToolDependencies) -> APIRouter:
    r = guard.router("traffic")

    @r.get("/admin/tool-deps")
    async def list_deps() -> dict[str, Any]:
        """Every dependency rule, a topological order of the tools, and the refusals so far."""
        return deps.view()

    @r.post("/admin/tool-deps")
    async def set_dep(body: DependencyBody, request: Request) -> dict[str, Any]:
        """Add or replace the rule for `tool` (an edge closing a cycle is 409)."""
        warnings = deps.set(body.tool, body.depends_on, body.hard, body.window_seconds, actor(request))
        return {"dependency": deps.table[body.tool].view(), "warnings": warnings}

    @r.delete("/admin/tool-deps")
    async def delete_dep(request: Request, tool: Annotated[str, Query(min_length=1, max_length=128)]) -> dict[str, Any]:
        """Remove the rule for `tool`: its calls no longer wait for anything."""
        return {"removed": deps.remove(tool, actor(request)).view()}

    return r
