"""A key holder's own credit history and rate windows: GET /balance/history, GET /balance/rate-limit-status
(X-API-Key or Bearer, like GET /balance)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from paygate.api.query import TimeQuery, parse_time
from paygate.asgi import api_key_from, header_map
from paygate.reports.balance import HISTORY_DEFAULT, HISTORY_MAX, BalanceHistory, HistoryQuery


def client_router(service: BalanceHistory) -> APIRouter:
    r = APIRouter(tags=["client"])

    @r.get("/balance/history")
    async def balance_history(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=HISTORY_MAX)] = HISTORY_DEFAULT,
        type: Annotated[
            str | None, Query(pattern=r"^[a-z_]{1,32}$", description="initial, topup, deduction, refund, …")
        ] = None,
        since: TimeQuery = None,
        before: Annotated[int | None, Query(ge=1, le=2**62, description="nextBefore of the previous page")] = None,
    ) -> dict[str, Any]:
        """The caller's own credit movements, newest first (at most 100 per answer; `nextBefore` pages on),
        with the spending velocity of the last 24 hours."""
        query = HistoryQuery(limit, type, parse_time("since", since), before)
        return service.history(api_key_from(header_map(request.scope)), query)

    @r.get("/balance/rate-limit-status")
    async def balance_rate_limit_status(request: Request) -> dict[str, Any]:
        """The caller's own rate windows, global and per tool (the admin's /keys/rate-limit-status for one's
        own key): peeked, so looking never uses a slot."""
        return service.rate_limits(api_key_from(header_map(request.scope)))

    return r
