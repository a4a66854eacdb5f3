"""Maintenance mode: GET/POST /maintenance.

While enabled, /mcp answers 503 with a JSON-RPC error (`maintenance_mode`), /ready is
503 and /health says "maintenance"; admin endpoints keep working. The state lives in
the store (admin/maintenance.py), so a restart does not end a maintenance window.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from paygate.api.common import Body, actor, require_admin
from paygate.keys.service import iso_time
from paygate.runtime import Runtime


class MaintenanceBody(Body):
    enabled: bool
    message: str | None = Field(default=None, min_length=1, max_length=500)


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["maintenance"])

    def view() -> dict[str, Any]:
        m = rt.maintenance
        return {"enabled": m.enabled, "message": m.message if m.enabled else None, "since": iso_time(m.since)}

    @r.get("/maintenance")
    async def get_maintenance() -> dict[str, Any]:
        """Whether maintenance mode is on, with its message and since when."""
        return view()

    @r.post("/maintenance")
    async def set_maintenance(body: MaintenanceBody, request: Request) -> dict[str, Any]:
        """Turn maintenance mode on (with an optional message for clients) or off."""
        rt.maintenance.set(body.enabled, body.message)
        if body.enabled:
            rt.events.publish("maintenance.enabled", actor(request), message=rt.maintenance.message)
        else:
            rt.events.publish("maintenance.disabled", actor(request))
        return view()

    return r
