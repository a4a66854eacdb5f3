"""POST /config/reload: re-read the config file and apply the hot-reloadable settings (admin/reload.py,
docs/reload.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.admin.reload import ConfigReloader
from paygate.api.common import AdminGuard, Body, actor


class ReloadBody(Body):
    config_path: str | None = Field(
        default=None, min_length=1, max_length=4096, description="a one-time reload from this file instead"
    )


def router(guard: AdminGuard, reloader: ConfigReloader) -> APIRouter:
    r = guard.router("config-reload")

    @r.post("/config/reload")
    async def reload_config(request: Request, body: ReloadBody | None = None) -> dict[str, Any]:
        """Validate the config file as a whole, then apply its reloadable fields (400: nothing changed)."""
        return await reloader.reload(body.config_path if body else None, actor(request), "api")

    return r
