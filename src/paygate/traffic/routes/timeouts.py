"""GET /admin/timeouts (viewer): the global and per-tool timeouts in force. POST /admin/timeouts (admin):
change them at runtime; kept in the store (traffic/timeouts.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.traffic.timeouts import Timeouts

MAX_TIMEOUT_MS = 86_400_000  # a day, as toolPricing[t].timeoutMs allows
ToolName = Annotated[str, Field(min_length=1, max_length=200)]
TimeoutMs = Annotated[int, Field(ge=0, le=MAX_TIMEOUT_MS)]


class TimeoutsChange(Body):
    tool_timeout_ms: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_MS, description="the global timeout")
    tools: dict[ToolName, TimeoutMs] | None = Field(
        default=None, max_length=1000, description="tool → its timeout in ms; 0 = the global one"
    )
    replace: bool = Field(default=False, description="`tools` is the whole table (tools left out follow the global)")


def router(guard: AdminGuard, timeouts: Timeouts) -> APIRouter:
    r = guard.router("traffic")

    @r.get("/admin/timeouts")
    async def timeouts_view() -> dict[str, Any]:
        """The global timeout and each tool's own, in milliseconds, and whether an admin set them."""
        return timeouts.view()

    @r.post("/admin/timeouts")
    async def timeouts_update(body: TimeoutsChange, request: Request) -> dict[str, Any]:
        """Change the global and/or per-tool timeouts at once (audited as `timeouts.updated`)."""
        return timeouts.update(body.tool_timeout_ms, body.tools, body.replace, actor(request))

    return r
