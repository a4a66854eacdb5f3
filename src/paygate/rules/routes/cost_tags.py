"""GET/POST/DELETE /admin/cost-tags and GET /admin/cost-tags/report (rules/cost_tags.py,
docs/money-rules.md#cost-tags)."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, find_key
from paygate.core import cost_tags as ct
from paygate.core.domain_errors import Invalid
from paygate.keys.service import KeyService
from paygate.rules.cost_tags import LIMIT_FIELDS, CostTags

TagName = Annotated[str, Field(pattern=ct.NAME.pattern)]
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _limit(name: str) -> Any:
    _, low, high = LIMIT_FIELDS[name]
    return Field(default=None, ge=low, le=high)


class CostTagsBody(Body):
    enabled: bool | None = Field(default=None, description="attribute the tags callers send")
    allowed_tags: list[TagName] | None = Field(default=None, max_length=100, description="empty: any name")
    max_header_bytes: int | None = _limit("maxHeaderBytes")
    max_tags_per_request: int | None = _limit("maxTagsPerRequest")
    max_value_length: int | None = _limit("maxValueLength")
    max_cardinality: int | None = _limit("maxCardinality")
    retention_days: int | None = _limit("retentionDays")
    key: KeyRefField | None = Field(default=None, description="with requiredTags: the key they apply to")
    required_tags: list[TagName] | None = Field(default=None, min_length=1, max_length=20)


def router(guard: AdminGuard, tags: CostTags, keys: KeyService) -> APIRouter:
    r = guard.router("cost-tags")

    @r.get("/admin/cost-tags")
    async def get_cost_tags() -> dict[str, Any]:
        """The settings, the keys that must send tags, each tag's distinct values so far, the counts."""
        return tags.view()

    @r.post("/admin/cost-tags")
    async def set_cost_tags(body: CostTagsBody, request: Request) -> dict[str, Any]:
        """Change the settings and/or set one key's required tags; kept in the store."""
        changes = body.model_dump(by_alias=True, exclude_none=True, exclude={"key"})
        key = find_key(keys, body.key) if body.key is not None else None
        if "allowedTags" in changes:
            changes["allowedTags"] = sorted(set(changes["allowedTags"]))
        return tags.configure(changes, key, actor(request))

    @r.delete("/admin/cost-tags")
    async def unrequire(request: Request, key: Annotated[str, Query(min_length=1, max_length=200)]) -> dict[str, Any]:
        """The key's calls no longer need to carry tags."""
        return tags.unrequire(find_key(keys, key), actor(request))

    @r.get("/admin/cost-tags/report", response_model=None)
    async def report(
        group_by: Annotated[str, Query(alias="groupBy", min_length=1, max_length=200)],
        since: str | None = None,
        until: str | None = None,
        format: Literal["json", "csv"] = "json",
    ) -> Any:
        """Calls and credits by the values of one or more tags (comma-separated `groupBy`), over UTC days
        `since`..`until` (default: today); two tags also give their cross-tabulation; `format=csv`."""
        dims = [d.strip() for d in group_by.split(",")]
        if not 1 <= len(dims) <= 3 or not all(ct.NAME.match(d) for d in dims) or len(set(dims)) != len(dims):
            raise Invalid("Invalid request: groupBy is 1 to 3 distinct tag names, comma-separated")
        today = time.strftime("%Y-%m-%d", time.gmtime())
        first, last = since or today, until or today
        if not DAY.match(first) or not DAY.match(last) or first > last:
            raise Invalid("Invalid request: since and until are UTC days (YYYY-MM-DD), since <= until")
        result = {"since": first, "until": last, **ct.report(tags.rows(first, last), dims)}
        if format == "json":
            return result
        return Response(
            ct.to_csv(result),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="paygate-cost-tags.csv"'},
        )

    return r
