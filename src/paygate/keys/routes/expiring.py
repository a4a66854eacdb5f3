"""Keys expiring soon: GET /keys/expiring (and the expiry scanner's state)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from paygate.api.common import require_admin
from paygate.keys.expiry import ExpiryScanner, ScannerConfig, expiring
from paygate.runtime import Runtime

MAX_WITHIN = 366 * 86_400


def router(rt: Runtime) -> APIRouter:
    scanner = ExpiryScanner(rt.store, rt.events.publish, ScannerConfig.from_settings(rt.settings))
    rt.tickers.append(scanner.tick)
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["expiring"])

    @r.get("/keys/expiring")
    async def keys_expiring(within: Annotated[int, Query(ge=1, le=MAX_WITHIN)] = 86_400) -> dict[str, Any]:
        """Active keys that expire within `within` seconds, soonest first, and the scanner's state."""
        keys = expiring(rt.store.list_keys(), within)
        return {"within": within, "count": len(keys), "scanner": scanner.status(), "keys": keys}

    return r
