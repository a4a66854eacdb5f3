"""Namespaces: GET /namespaces (keys, credits and spending per tenant; `policy/namespaces.py`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from paygate.api.common import AdminGuard
from paygate.keys.service import KeyService
from paygate.policy.namespaces import namespace_stats


def router(guard: AdminGuard, keys: KeyService) -> APIRouter:
    r = guard.router("namespaces")

    @r.get("/namespaces")
    async def namespaces() -> dict[str, Any]:
        """Every namespace in use, with its key, credit and spending totals."""
        rows = namespace_stats(keys.all())
        return {"namespaces": rows, "count": len(rows)}

    return r
