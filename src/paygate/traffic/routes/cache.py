"""The response cache's admin view: GET/POST/DELETE /admin/cache (traffic/cache.py, docs/traffic.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.traffic.cache import ResponseCache


class CacheBody(Body):
    ttl_seconds: int | None = Field(default=None, ge=0, le=86_400 * 30, description="the global TTL (0: off)")
    max_entries: int | None = Field(default=None, ge=0, le=1_000_000, description="entries in all (0: off)")


def router(guard: AdminGuard, cache: ResponseCache) -> APIRouter:
    r = guard.router("cache")

    @r.get("/admin/cache")
    async def get_cache() -> dict[str, Any]:
        """Entries, hits, misses, hit rate, the settings, and the same per tool."""
        return cache.view()

    @r.post("/admin/cache")
    async def configure_cache(body: CacheBody, request: Request) -> dict[str, Any]:
        """Set the global TTL and/or the bound (kept in the store: a restart keeps them)."""
        cache.configure(body.ttl_seconds, body.max_entries, actor(request))
        return cache.view()

    @r.delete("/admin/cache")
    async def clear_cache(
        request: Request, tool: Annotated[str | None, Query(min_length=1, max_length=200)] = None
    ) -> dict[str, Any]:
        """Drop every cached answer, or only one tool's (`?tool=`)."""
        return {"cleared": cache.clear(tool, actor(request)), "tool": tool}

    return r
