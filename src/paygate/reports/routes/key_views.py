"""Fleet views: GET /keys (pagination, filters, sorting), GET /keys/stats, GET /keys/compare."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, model_validator

from paygate.api.common import ApiError, require_admin
from paygate.core.keys import ADMIN_KEY_PREFIX, KEY_PREFIX, mask_key
from paygate.core.records import KeyRecord
from paygate.keys.service import key_view
from paygate.reports.fleet import KeyFilter, page, stats
from paygate.reports.health import compare_row
from paygate.reports.keys import KeyReports
from paygate.reports.routes.key_reports import QueryParams, view_key
from paygate.runtime import Runtime

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

        return KeyFilter(self.namespace, self.group, self.status, flag(self.active), flag(self.suspended),
                         flag(self.expired), self.name_prefix, self.min_credits, self.max_credits)


class StatsParams(QueryParams):
    namespace: Name | None = None


class CompareParams(QueryParams):
    keys: str = Field(min_length=1, max_length=MAX_COMPARE * 201, description="2-10 keys or aliases, comma-separated")


_ALIAS_SHAPED = re.compile(r"[A-Za-z0-9_-]{1,100}")  # what POST /keys/alias accepts
_SECRET_LIKE = re.compile(r"(?=[A-Za-z]*[0-9])[A-Za-z0-9]{16,}")  # a long run of letters and digits
_KEY_PREFIXES = (KEY_PREFIX, ADMIN_KEY_PREFIX, "ak_")


def masked_ref(ref: str) -> str:
    """How an unmatched reference is reported back: what could be an alias as given; anything else
    (an API key of ours or of another format, an admin key, a token pasted by mistake) masked."""
    if _ALIAS_SHAPED.fullmatch(ref) and not ref.startswith(_KEY_PREFIXES) and not _SECRET_LIKE.search(ref):
        return ref
    return mask_key(ref)


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["key-views"])

    @r.get("/keys", response_model=None)
    async def list_keys(request: Request, params: Annotated[ListParams, Query()]) -> Any:
        """Every key, masked, as a flat array; with any query parameter, one page of the matching keys in
        `{keys, total, offset, limit, hasMore}`."""
        now = time.time()
        if not request.query_params:
            return [key_view(k, now) for k in rt.store.list_keys()]
        keys, total = page(rt.store.list_keys(), params.key_filter(), params.sort_by, params.order == "desc",
                           params.offset, params.limit, now)
        return {"keys": [key_view(k, now) for k in keys], "total": total, "offset": params.offset,
                "limit": params.limit, "hasMore": params.offset + len(keys) < total}

    @r.get("/keys/stats")
    async def key_stats(params: Annotated[StatsParams, Query()]) -> dict[str, Any]:
        """Counts by status, credit aggregates, namespace and group breakdowns (optionally one namespace)."""
        return stats(rt.store.list_keys(), time.time(), params.namespace)

    @r.get("/keys/compare")
    async def compare(params: Annotated[CompareParams, Query()]) -> dict[str, Any]:
        """Side by side: 2-10 keys (or aliases). Unknown ones are listed in `notFound` (masked); 404 if none
        is known."""
        refs = list(dict.fromkeys(part.strip() for part in params.keys.split(",")))
        if any(not ref or len(ref) > 200 for ref in refs):
            raise ApiError(400, "Invalid request: keys: each entry must be 1-200 characters")
        if not 2 <= len(refs) <= MAX_COMPARE:
            raise ApiError(400, f"Invalid request: keys: give 2-{MAX_COMPARE} distinct keys, comma-separated")
        found: dict[str, KeyRecord] = {}
        not_found: list[str] = []
        for ref in refs:
            try:
                record = view_key(rt, ref)
            except ApiError:
                not_found.append(masked_ref(ref))
                continue
            found.setdefault(record.key_hash, record)  # a key named twice (by key and alias) is shown once
        if not found:
            raise ApiError(404, "API key not found", notFound=not_found)
        reports, now = KeyReports(rt.store, rt.billing), time.time()
        rows = [compare_row(reports, record, now) for record in found.values()]
        out: dict[str, Any] = {"compared": len(rows), "keys": rows}
        if not_found:
            out["notFound"] = not_found
        return out

    return r
