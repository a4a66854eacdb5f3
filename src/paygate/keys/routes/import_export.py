"""Key import and export: GET /keys/export, POST /keys/import."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict, Field

from paygate.api.common import AdminGuard, Body, actor, role
from paygate.api.fields import (
    NAMESPACE_PATTERN,
    Alias,
    AutoTopupConfig,
    CountryList,
    IpList,
    QuotaLimits,
    Tags,
    ToolList,
)
from paygate.core.values import MAX_CREDITS, iso_time
from paygate.keys import import_export as key_io

MAX_IMPORT = 1000  # entries per request, as the reference
Name = Annotated[str, Field(min_length=1, max_length=200)]
Namespace = Annotated[str, Field(min_length=1, max_length=64, pattern=NAMESPACE_PATTERN)]
Stamp = Annotated[str, Field(max_length=40)]


class ImportEntry(Body):
    """One key: as `GET /keys/export` writes it, or a paygate-mcp record with a raw `key`.

    Fields this gateway does not know (a paygate-mcp export's internal counters) are not an error: they are
    left out and named in the entry's result as `ignoredFields`, so a migration is never silently lossy."""

    model_config = ConfigDict(extra="allow")

    key: str | None = Field(default=None, min_length=8, max_length=200, pattern=r"^pg_")
    key_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    key_masked: str | None = Field(default=None, max_length=40)
    name: Name | None = None
    credits: int = Field(default=0, ge=0, le=MAX_CREDITS)
    total_spent: int = Field(default=0, ge=0, le=MAX_CREDITS)
    total_calls: int = Field(default=0, ge=0, le=MAX_CREDITS)
    created_at: Stamp | None = None
    last_used_at: Stamp | None = None
    expires_at: Stamp | None = None
    active: bool = True
    suspended: bool = False
    # the same field types (and limits) as the policy endpoints that set these fields one by one
    allowed_tools: ToolList = Field(default_factory=list)
    denied_tools: ToolList = Field(default_factory=list)
    quota: QuotaLimits | None = None
    tags: Tags = Field(default_factory=dict)
    namespace: Namespace = "default"
    ip_allowlist: IpList = Field(default_factory=list)
    spending_limit: int = Field(default=0, ge=0, le=MAX_CREDITS)
    alias: Alias | None = None
    group_id: Name | None = None
    team_id: Name | None = None
    plan: Name | None = None
    allowed_countries: CountryList = Field(default_factory=list)
    denied_countries: CountryList = Field(default_factory=list)
    notes: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    auto_topup: AutoTopupConfig | None = None
    extra: dict[str, Any] = Field(default_factory=dict, max_length=100)


class ImportBody(Body):
    """`{keys, mode}`; the other fields let a whole `GET /keys/export` document be posted back as is."""

    keys: list[ImportEntry] = Field(min_length=1, max_length=MAX_IMPORT)
    mode: Literal["skip", "overwrite", "error"] = "skip"
    version: Literal[1] | None = None
    exported_at: Stamp | None = None
    count: int | None = Field(default=None, ge=0, le=MAX_IMPORT)


def _fields(entry: ImportEntry) -> dict[str, Any]:
    """An entry's known fields, snake_case; nested settings stored as the endpoints that set them store
    them: camelCase."""
    fields = entry.model_dump(exclude=set(entry.model_extra or {}), by_alias=False)
    for name in ("auto_topup", "quota"):
        nested = getattr(entry, name)
        fields[name] = nested.model_dump(by_alias=True) if nested is not None else None
    return fields


def router(guard: AdminGuard, service: key_io.KeyImportExport) -> APIRouter:
    r = guard.router("key-io")

    # Admin, not viewer: an export is a backup (the same rule as GET /admin/backup).
    @r.get("/keys/export", response_model=None, openapi_extra=role("admin"))
    async def export(
        request: Request,
        format: Literal["json", "csv"] = "json",
        namespace: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        active_only: Annotated[bool, Query(alias="activeOnly")] = False,
    ) -> Response:
        """Every key (or one namespace's, or only active ones) with all its fields; hashes, never raw keys."""
        entries = service.export(namespace, active_only, format, actor(request))
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        if format == "csv":
            return Response(
                key_io.export_csv(entries),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="paygate-keys-{stamp}.csv"'},
            )
        document = {
            "version": key_io.EXPORT_VERSION,
            "exportedAt": iso_time(now),
            "count": len(entries),
            "keys": entries,
        }
        return JSONResponse(
            document, headers={"Content-Disposition": f'attachment; filename="paygate-keys-{stamp}.json"'}
        )

    @r.post("/keys/import")
    async def import_keys(body: ImportBody, request: Request) -> dict[str, Any]:
        """Import keys; every entry is checked before anything changes (`error` mode: all or nothing)."""
        return service.import_keys(
            [_fields(e) for e in body.keys], [sorted(e.model_extra or {}) for e in body.keys], body.mode, actor(request)
        )

    return r
