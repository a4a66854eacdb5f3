"""Fleet views: GET /keys (pagination, filters, sorting), GET /keys/stats, GET /keys/compare."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field, model_validator

from paygate.api.common import AdminGuard
from paygate.core.domain_errors import Invalid
from paygate.keys.service import key_view
from paygate.reports.fleet import KeyFilter, page, stats
from paygate.reports.routes.key_reports import QueryParams
from paygate.reports.service import ReportService

MAX_PAGE = 500  # the reference's cap on limit
MAX_COMPARE = 10
Name = Annotated[str, Field(min_length=1, max_length=200)]
Flag = Literal["true", "false"]
Credits = Annotated[int, Field(ge=0, le=10**15)]


class ListParams(QueryParams):
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=10**9)
    sort_by: Literal["createdAt", "name", "credits", "lastUsedAt", "totalSpent", "totalCalls"] = "createdAt"
    order: Literal["asc", "desc"] = "desc"
    namespace: Name | None = None
    group: Name | None = None
    status: Literal["active", "suspended", "expired", "revoked"] | None = None
    active: Flag | None = None
    suspended: Flag | None = None
    expired: Flag | None = None
    name_prefix: Name | None = None
    min_credits: Credits | None = None
    max_credits: Credits | None = None

    @model_validator(mode="after")
    def _range(self) -> ListParams:
        if self.min_credits is not None and self.max_credits is not None and self.min_credits > self.max_credits:
            raise ValueError("minCredits must not exceed maxCredits")
        return self

    def key_filter(self) -> KeyFilter:
        def flag(value: Flag | None) -> bool | None:
            return None if value is None else value == "true"

        return KeyFilter(
            self.namespace,
            self.group,
            self.status,
            flag(self.active),
            flag(self.suspended),
            flag(self.expired),
            self.name_prefix,
            self.min_credits,
            self.max_credits,
        )


class StatsParams(QueryParams):
    namespace: Name | None = None


class CompareParams(QueryParams):
    keys: str = Field(min_length=1, max_length=MAX_COMPARE * 201, description="2-10 keys or aliases, comma-separated")


def router(guard: AdminGuard, service: ReportService) -> APIRouter:
    r = guard.router("key-views")

    @r.get("/keys", response_model=None)
    async def list_keys(request: Request, params: Annotated[ListParams, Query()]) -> Any:
        """Every key, masked, as a flat array; with any query parameter, one page of the matching keys in
        `{keys, total, offset, limit, hasMore}`."""
        now, fleet = time.time(), service.fleet()
        if not request.query_params:
            return [key_view(k, now) for k in fleet]
        keys, total = page(
            fleet, params.key_filter(), params.sort_by, params.order == "desc", params.offset, params.limit, now
        )
        return {
            "keys": [key_view(k, now) for k in keys],
            "total": total,
            "offset": params.offset,
            "limit": params.limit,
            "hasMore": params.offset + len(keys) < total,
        }

    @r.get("/keys/stats")
    async def key_stats(params: Annotated[StatsParams, Query()]) -> dict[str, Any]:
        """Counts by status, credit aggregates, namespace and group breakdowns (optionally one namespace)."""
        return stats(service.fleet(), time.time(), params.namespace)

    @r.get("/keys/compare")
    async def compare(params: Annotated[CompareParams, Query()]) -> dict[str, Any]:
        """Side by side: 2-10 keys (or aliases). Unknown ones are listed in `notFound` (masked); 404 if none
        is known."""
        refs = list(dict.fromkeys(part.strip() for part in params.keys.split(",")))
        if any(not ref or len(ref) > 200 for ref in refs):
            raise Invalid("Invalid request: keys: each entry must be 1-200 characters")
        if not 2 <= len(refs) <= MAX_COMPARE:
            raise Invalid(f"Invalid request: keys: give 2-{MAX_COMPARE} distinct keys, comma-separated")
        return service.compare(refs)

    return r
