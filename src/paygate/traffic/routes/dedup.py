"""Dedup / idempotency's admin view: GET/POST/DELETE /admin/dedup (traffic/dedup.py, docs/traffic.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.traffic.dedup import Dedup


class DedupBody(Body):
    enabled: bool | None = None
    window_seconds: int | None = Field(default=None, ge=1, le=86_400)
    max_entries: int | None = Field(default=None, ge=1, le=1_000_000)
    auto_key: bool | None = None


def router(guard: AdminGuard, dedup: Dedup) -> APIRouter:
    r = guard.router("dedup")

    @r.get("/admin/dedup")
    async def get_dedup() -> dict[str, Any]:
        """The settings, the keys remembered and running, replays, conflicts and credits saved."""
        return dedup.view()

    @r.post("/admin/dedup")
    async def configure_dedup(body: DedupBody, request: Request) -> dict[str, Any]:
        """Change any of the settings (kept in the store: a restart keeps them)."""
        dedup.configure(body.model_dump(by_alias=True, exclude_none=True), actor(request))
        return dedup.view()

    @r.delete("/admin/dedup")
    async def clear_dedup(request: Request) -> dict[str, Any]:
        """Forget every finished call's answer (calls still running keep their waiters)."""
        return {"cleared": dedup.clear(actor(request))}

    return r
