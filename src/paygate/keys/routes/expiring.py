"""Keys expiring soon: GET /keys/expiring (and the expiry scanner's state)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from paygate.api.common import AdminGuard
from paygate.keys.expiry import ExpiryScanner

MAX_WITHIN = 366 * 86_400


def router(guard: AdminGuard, scanner: ExpiryScanner) -> APIRouter:
    r = guard.router("expiring")

    @r.get("/keys/expiring")
    async def keys_expiring(within: Annotated[int, Query(ge=1, le=MAX_WITHIN)] = 86_400) -> dict[str, Any]:
        """Active keys that expire within `within` seconds, soonest first, and the scanner's state."""
        return scanner.report(within)

    return r
