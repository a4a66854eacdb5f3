"""Scheduled key actions: POST, GET and DELETE /keys/schedule."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, find_key
from paygate.core.documents import readable
from paygate.core.domain_errors import Invalid
from paygate.core.values import MAX_CREDITS
from paygate.keys.import_export import parse_iso
from paygate.keys.schedules import KIND, Schedules, schedule_view
from paygate.keys.service import KeyService

MAX_AHEAD = 10 * 366 * 86_400  # ten years


class TopupParams(Body):
    credits: int = Field(gt=0, le=MAX_CREDITS)


class ScheduleBody(Body):
    key: KeyRefField
    action: Literal["revoke", "suspend", "resume", "topup"]
    execute_at: str | None = Field(default=None, max_length=40)
    delay_seconds: int | None = Field(default=None, ge=1, le=MAX_AHEAD)
    params: TopupParams | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleBody:
        if (self.execute_at is None) == (self.delay_seconds is None):
            raise ValueError("give executeAt (ISO 8601) or delaySeconds, one of them")
        if self.action == "topup" and self.params is None:
            raise ValueError("a topup needs params.credits")
        if self.action != "topup" and self.params is not None:
            raise ValueError(f"{self.action} takes no params")
        return self

    def when(self, now: float) -> float:
        if self.delay_seconds is not None:
            return now + self.delay_seconds
        assert self.execute_at is not None
        try:
            at = parse_iso(self.execute_at)
        except ValueError as exc:
            raise Invalid("Invalid request: executeAt must be an ISO 8601 date-time with a time zone") from exc
        if at <= now:
            raise Invalid("Invalid request: executeAt is in the past")
        if at > now + MAX_AHEAD:
            raise Invalid("Invalid request: executeAt is more than ten years ahead")
        return at


def router(guard: AdminGuard, keys: KeyService, service: Schedules) -> APIRouter:
    r = guard.router("schedules")

    @r.post("/keys/schedule", status_code=201)
    async def create(body: ScheduleBody, request: Request) -> JSONResponse:
        """Schedule a revoke, suspend, resume or topup of a key at a future time."""
        now = time.time()
        record = find_key(keys, body.key)
        at = body.when(now)
        params = body.params.model_dump(by_alias=True) if body.params else {}
        doc = service.create(record, body.action, at, params, actor(request), now)
        return JSONResponse(schedule_view(doc), status_code=201)

    @r.get("/keys/schedule")
    async def pending(key: Annotated[str | None, Query(min_length=1, max_length=200)] = None) -> dict[str, Any]:
        """Pending schedules, soonest first, optionally of one key (key or alias)."""
        key_hash = find_key(keys, key).key_hash if key is not None else None
        views = readable(KIND, service.pending(key_hash), schedule_view)
        return {"schedules": views, "count": len(views)}

    @r.delete("/keys/schedule")
    async def cancel(request: Request, id: Annotated[str, Query(min_length=1, max_length=64)]) -> dict[str, Any]:
        """Cancel a pending schedule."""
        doc = service.cancel(id, actor(request))
        return {"cancelled": True, **schedule_view(doc)}

    return r
