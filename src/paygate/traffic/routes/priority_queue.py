"""GET /admin/priority-queue (viewer), POST /admin/priority-queue (admin): the priority queue's settings,
the keys' tiers, what waits now and how waits ended; change them at runtime (traffic/limits_admin.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.config_traffic import Tier, WaitMs
from paygate.traffic.limits_admin import LimitsAdmin

KeyRef = Annotated[str, Field(min_length=1, max_length=200)]


class PriorityQueueChange(Body):
    """Any of these; the rest stay as they are. `maxWaitMs` and `keyTiers` are merged into what is set
    (`keyTiers`: a key or its alias → its tier; null or "normal" puts it back in the default tier)."""

    enabled: bool | None = None
    max_queue_depth: int | None = Field(default=None, ge=1, le=100_000)
    max_wait_ms: dict[Tier, WaitMs] | None = None
    promote_after_ms: int | None = Field(default=None, ge=0, le=3_600_000)
    key_tiers: dict[KeyRef, Tier | None] | None = Field(default=None, max_length=1000)


def router(guard: AdminGuard, admin: LimitsAdmin) -> APIRouter:
    r = guard.router("priority_queue")

    @r.get("/admin/priority-queue")
    async def priority_queue_view() -> dict[str, Any]:
        """The queue's settings, the keys with a tier of their own, the calls waiting per tier, and the
        counts of waits, timeouts and promotions."""
        return admin.queue_view()

    @r.post("/admin/priority-queue")
    async def priority_queue_update(body: PriorityQueueChange, request: Request) -> dict[str, Any]:
        """Switch the queue on or off, change its depth, waits or promotion, or set keys' tiers (audited as
        `priority_queue.updated`; an unknown key is a 404 that changes nothing)."""
        changes = body.model_dump(by_alias=True, exclude_none=True, exclude={"key_tiers"})
        return admin.update_queue(changes, body.key_tiers, actor(request))

    return r
