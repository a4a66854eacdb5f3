"""Traffic mirror: GET/POST/DELETE /admin/mirror (traffic/mirror.py; docs/traffic.md, "Mirror")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.traffic.mirror import Mirror


class MirrorBody(Body):
    url: str = Field(min_length=1, max_length=2048)
    percentage: int = Field(default=100, ge=0, le=100)
    timeout_ms: int = Field(default=5000, ge=1, le=300_000)


def router(guard: AdminGuard, mirror: Mirror) -> APIRouter:
    r = guard.router("traffic")

    @r.get("/admin/mirror")
    async def get_mirror() -> dict[str, Any]:
        """The shadow server, its sampling and timeout, and what was mirrored, dropped and failed."""
        return mirror.view()

    @r.post("/admin/mirror")
    async def set_mirror(body: MirrorBody, request: Request) -> dict[str, Any]:
        """Mirror a sample of tools/call to a shadow server (replacing any)."""
        await mirror.set(body.url, body.percentage, body.timeout_ms, actor(request))
        return mirror.view()

    @r.delete("/admin/mirror")
    async def stop_mirror(request: Request) -> dict[str, Any]:
        """Stop mirroring (kept across restarts, over the config file's mirror)."""
        mirror.remove(actor(request))
        return mirror.view()

    return r
