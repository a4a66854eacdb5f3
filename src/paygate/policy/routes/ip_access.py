"""Global IP access rules: GET/POST/DELETE /admin/ip-access (policy/ip_access.py; docs/access-rules.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.core.domain_errors import Invalid
from paygate.policy.ip_access import MAX_ENTRIES, IpAccess

Entry = Annotated[str, Field(min_length=1, max_length=64)]
DAY = 86_400


class AutoBlockBody(Body):
    enabled: bool | None = None
    threshold: int | None = Field(default=None, ge=1, le=1_000_000)
    window_seconds: int | None = Field(default=None, ge=1, le=30 * DAY)
    block_seconds: int | None = Field(default=None, ge=1, le=365 * DAY)


class BlockBody(Body):
    ip: Entry
    seconds: int = Field(default=3600, ge=1, le=365 * DAY)


class IpAccessBody(Body):
    """Fields left out keep their value; a list given replaces the list."""

    enabled: bool | None = None
    allow: list[Entry] | None = Field(default=None, max_length=MAX_ENTRIES)
    deny: list[Entry] | None = Field(default=None, max_length=MAX_ENTRIES)
    auto_block: AutoBlockBody | None = None
    block: BlockBody | None = None


def router(guard: AdminGuard, access: IpAccess) -> APIRouter:
    r = guard.router("access")

    @r.get("/admin/ip-access")
    async def show() -> dict[str, Any]:
        """The rules, the addresses blocked now, and how many requests were refused."""
        return access.view()

    @r.post("/admin/ip-access")
    async def configure(body: IpAccessBody, request: Request) -> dict[str, Any]:
        """Change the rules (allow/deny lists, auto-block), and/or block one address by hand."""
        who = actor(request)
        rules_given = body.model_fields_set - {"block"}
        if not rules_given and body.block is None:
            raise Invalid("Invalid request: nothing to change (enabled, allow, deny, autoBlock or block)")
        warnings: list[str] = []
        if rules_given:
            auto = body.auto_block.model_dump(exclude_none=True) if body.auto_block is not None else None
            warnings = access.configure(who, body.enabled, body.allow, body.deny, auto)
        if body.block is not None:
            access.block(body.block.ip, body.block.seconds, who)
        return {**access.view(), "warnings": warnings}

    @r.delete("/admin/ip-access")
    async def unblock(
        request: Request,
        ip: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        all_blocks: Annotated[bool, Query(alias="all")] = False,
    ) -> dict[str, Any]:
        """Lift one address's block (`?ip=`), or every block (`?all=true`)."""
        if (ip is None) == (not all_blocks):
            raise Invalid("Invalid request: give either ip=ADDRESS or all=true")
        count = access.unblock(ip, actor(request))
        return {"unblocked": count}

    return r
