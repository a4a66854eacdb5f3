"""GET /admin/concurrency (viewer), POST /admin/concurrency (admin): the concurrency limits, the calls in
flight per key and per tool, the refusals; change the limits at runtime (traffic/limits_admin.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.traffic.limits_admin import LimitsAdmin


class ConcurrencyChange(Body):
    """Either or both; 0 = no limit. Kept in the store: a restart keeps it."""

    max_concurrent_per_key: int | None = Field(default=None, ge=0, le=1_000_000)
    max_concurrent_per_tool: int | None = Field(default=None, ge=0, le=1_000_000)


def router(guard: AdminGuard, admin: LimitsAdmin) -> APIRouter:
    r = guard.router("concurrency")

    @r.get("/admin/concurrency")
    async def concurrency_view() -> dict[str, Any]:
        """The limits, the calls in flight (per key, masked, and per tool) and the -32005 refusals."""
        return admin.view()

    @r.post("/admin/concurrency")
    async def concurrency_update(body: ConcurrencyChange, request: Request) -> dict[str, Any]:
        """Change maxConcurrentPerKey and/or maxConcurrentPerTool at once (audited as `concurrency.updated`)."""
        return admin.update(body.max_concurrent_per_key, body.max_concurrent_per_tool, actor(request))

    return r
