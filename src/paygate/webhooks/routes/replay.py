"""The admin webhook replay queue over HTTP: GET/POST/DELETE /admin/webhook-replay (webhooks/replay_queue.py).

A view over the webhook dead letters and retrying batches (the same store as /webhooks/dead-letter and
/webhooks/replay). GET needs the viewer role, POST and DELETE admin. Refusals change nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.webhooks.replay_queue import ReplayQueue

Status = Literal["pending", "retrying", "succeeded", "exhausted"]
EntryId = Annotated[str, Field(min_length=1, max_length=40)]


class ReplayBody(Body):
    action: Literal["replay"]
    id: EntryId | None = None
    status: Status | None = None
    max_retries: int | None = Field(default=None, ge=0, le=20)


class PurgeBody(Body):
    id: EntryId | None = None
    status: Status | None = None


def router(guard: AdminGuard, queue: ReplayQueue) -> APIRouter:
    r = guard.router("webhook-replay")

    @r.get("/admin/webhook-replay")
    async def list_entries(
        status: Annotated[Status | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Failed deliveries with their context and status (pending, retrying, succeeded, exhausted)."""
        return queue.view(status, limit)

    @r.post("/admin/webhook-replay")
    async def replay(body: ReplayBody, request: Request) -> dict[str, Any]:
        """`{"action": "replay"}` replays every exhausted entry, with `id` one, with `status: "exhausted"`
        all of them; `maxRetries` overrides webhookReplayMaxRetries for these."""
        return queue.replay(actor(request), body.id, body.status, body.max_retries)

    @r.delete("/admin/webhook-replay")
    async def purge(
        request: Request,
        id: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
        status: Annotated[Status | None, Query()] = None,
        body: PurgeBody | None = None,
    ) -> dict[str, Any]:
        """Purge one entry (`id`) or every entry of a status (exhausted or succeeded), by query or body."""
        return queue.purge(actor(request), id or (body.id if body else None), status or (body.status if body else None))

    return r
