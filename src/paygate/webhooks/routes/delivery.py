"""Webhook delivery over HTTP: stats, delivery log, test, pause/resume, dead letters, replay, health.

The service is built by the composition root (compose/events.py: an unsafe webhookUrl or
webhookFilters entry stops start-up with a clear error); filters and per-key URLs are in
webhooks/routes/filters.py. GETs need the viewer role, everything else admin.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.api.query import TimeQuery, parse_time
from paygate.keys.service import KeyService
from paygate.webhooks.routes import filters as webhook_filters
from paygate.webhooks.service import WebhookService

MAX_LOG_LIMIT = 200
MAX_INDICES = 1000


class TestBody(Body):
    message: str | None = Field(default=None, min_length=1, max_length=500)


class ReplayBody(Body):
    indices: list[Annotated[int, Field(ge=0)]] | None = Field(default=None, min_length=1, max_length=MAX_INDICES)


def router(guard: AdminGuard, keys: KeyService, service: WebhookService) -> APIRouter:
    r = guard.router("webhooks")
    add_routes(r, service)
    webhook_filters.add_routes(r, keys, service)
    return r


def add_routes(r: APIRouter, service: WebhookService) -> None:
    @r.get("/webhooks/stats")
    async def stats() -> dict[str, Any]:
        """Delivery counters, queue state, pause state, and the same per destination."""
        return service.stats()

    @r.get("/webhooks/log")
    async def delivery_log(
        limit: Annotated[int, Query(ge=1, le=MAX_LOG_LIMIT)] = 50,
        since: TimeQuery = None,
        success: Annotated[bool | None, Query()] = None,
    ) -> dict[str, Any]:
        """Delivery attempts, newest first (the last 500 kept in memory)."""
        return service.delivery_log(limit, parse_time("since", since), success)

    @r.post("/webhooks/test")
    async def test(request: Request, body: TestBody | None = None) -> dict[str, Any]:
        """Send one `webhook.test` event to the webhook URL now and report what happened."""
        return await service.test(body.message if body else None, actor(request))

    @r.post("/webhooks/pause")
    async def pause(request: Request) -> dict[str, Any]:
        """Hold all deliveries; events keep being queued (durably) until resume."""
        return service.pause(actor(request))

    @r.post("/webhooks/resume")
    async def resume(request: Request) -> dict[str, Any]:
        """Deliver again, starting with everything buffered, at once."""
        return service.resume(actor(request))

    @r.get("/webhooks/dead-letter")
    async def dead_letters() -> dict[str, Any]:
        """Batches that ran out of retries, oldest first (`index` is what a replay names)."""
        entries = service.dead_letters()
        return {"deadLetters": entries, "count": len(entries)}

    @r.delete("/webhooks/dead-letter")
    async def clear_dead_letters(request: Request) -> dict[str, Any]:
        """Drop every dead letter."""
        return {"cleared": service.clear_dead_letters(actor(request))}

    @r.post("/webhooks/replay")
    async def replay(request: Request, body: ReplayBody | None = None) -> dict[str, Any]:
        """Queue dead letters again (all, or `indices`) as fresh batches."""
        return service.replay(body.indices if body else None, actor(request))

    @r.get("/admin/webhook-health")
    async def webhook_health() -> dict[str, Any]:
        """healthy | retrying | degraded (dead letters) | paused | not_configured, with the counters."""
        return service.health()
