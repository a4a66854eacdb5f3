"""GET /config: the running configuration (camelCase, as the config file spells it), secrets masked
(admin/config_view.py says how)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from paygate.admin.config_view import ConfigView
from paygate.api.common import AdminGuard, actor


def router(guard: AdminGuard, config: ConfigView) -> APIRouter:
    r = guard.router("config-view")

    @r.get("/config")
    async def get_config(request: Request) -> dict[str, Any]:
        """The running configuration with secrets masked."""
        return config.export(actor(request))

    return r
