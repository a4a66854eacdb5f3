"""GET/POST/DELETE /admin/scheduled-reports (webhooks/scheduled.py, docs/scheduled-reports.md)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.analytics.window import parse_instant
from paygate.api.common import AdminGuard, Body, actor
from paygate.core.domain_errors import Invalid
from paygate.webhooks.scheduled import ScheduledReports

IdQuery = Annotated[str, Query(min_length=1, max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class Filters(Body):
    namespace: Text | None = None
    group: Text | None = None
    tool: Text | None = None
    key: Text | None = None


class ScheduleBody(Body):
    action: Literal["save", "generate"] = "save"
    id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    type: Literal["usage", "billing", "compliance", "security"] | None = None
    frequency: Literal["daily", "weekly", "monthly"] | None = None
    filters: Filters | None = None
    url: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    enabled: bool | None = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=60)
    at: Annotated[str, Field(min_length=1, max_length=64)] | None = None


def router(guard: AdminGuard, reports: ScheduledReports) -> APIRouter:
    r = guard.router("scheduled-reports")

    @r.get("/admin/scheduled-reports")
    async def get_schedules(id: IdQuery | None = None) -> dict[str, Any]:
        """Every schedule with its delivery tracking (lastRun, lastStatus, nextDueAt); `?id=` one with its runs."""
        now = time.time()
        return reports.view(reports.find(id), now, runs=50) if id else reports.listing(now)

    @r.post("/admin/scheduled-reports")
    async def post_schedule(body: ScheduleBody, request: Request) -> dict[str, Any]:
        """save: create (no id) or change a schedule; generate: build and send a period's report now."""
        now = time.time()
        if body.action == "generate":
            given = body.model_dump(exclude_none=True, exclude={"action", "id", "at"})
            if not body.id or given:
                raise Invalid("generate takes id and, optionally, at (an instant in the period to report)")
            return await reports.generate_now(body.id, parse_instant("at", body.at), now)
        if body.at is not None:
            raise Invalid("at is used by the generate action only")
        fields = body.model_dump(by_alias=True, exclude_none=True, exclude={"action", "at"})
        return reports.save(fields, actor(request), now)

    @r.delete("/admin/scheduled-reports")
    async def delete_schedule(id: IdQuery, request: Request) -> dict[str, Any]:
        """Delete a schedule and its delivery records."""
        return reports.delete(id, actor(request))

    return r
