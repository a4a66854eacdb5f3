"""Maintenance mode: GET/POST /maintenance.

While enabled, /mcp answers 503 with a JSON-RPC error (`maintenance_mode`), /ready is
503 and /health says "maintenance"; admin endpoints keep working. The state lives in
the store (admin/maintenance.py), so a restart does not end a maintenance window.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.admin.maintenance import Maintenance
from paygate.api.common import AdminGuard, Body, actor
from paygate.core.values import iso_time


class MaintenanceBody(Body):
    enabled: bool
    message: str | None = Field(default=None, min_length=1, max_length=500)


def router(guard: AdminGuard, maintenance: Maintenance) -> APIRouter:
    r = guard.router("maintenance")

    def view() -> dict[str, Any]:
        m = maintenance
        return {"enabled": m.enabled, "message": m.message if m.enabled else None, "since": iso_time(m.since)}

    @r.get("/maintenance")
    async def get_maintenance() -> dict[str, Any]:
        """Whether maintenance mode is on, with its message and since when."""
        return view()

    @r.post("/maintenance")
    async def set_maintenance(body: MaintenanceBody, request: Request) -> dict[str, Any]:
        """Turn maintenance mode on (with an optional message for clients) or off."""
        maintenance.set(body.enabled, body.message, actor(request))
        return view()

    return r
