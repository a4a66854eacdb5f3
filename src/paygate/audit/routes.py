"""The audit log over HTTP: GET /audit, /audit/export, /audit/stats and /admin/compliance/export.

All read-only (viewer role). The log itself is written by `AuditService` a deferred
subscriber of the event bus set up by the composition root (`compose/core.py`).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from paygate.api.common import AdminGuard
from paygate.api.query import (
    FormatQuery,
    TimeQuery,
    TypesQuery,
    csv_response,
    file_stamp,
    parse_types,
    parse_window,
)
from paygate.audit.service import (
    AUDIT_COLUMNS,
    CATEGORIES,
    COMPLIANCE_COLUMNS,
    FRAMEWORKS,
    AuditFilter,
    AuditService,
    compliance_json,
    entry_json,
    to_csv,
)
from paygate.core.values import iso_time

MAX_LIMIT = 1000  # GET /audit
MAX_EXPORT = 100_000  # exports (retention keeps far fewer by default)

ActorQuery = Annotated[str | None, Query(min_length=1, max_length=200, description="exact actor")]


def audit_filter(types: str | None, actor: str | None, since: str | None, until: str | None) -> AuditFilter:
    """The filter a request names, or a 400."""
    start, end = parse_window(since, until)
    return AuditFilter(parse_types(types), actor, start, end)


def router(guard: AdminGuard, audit: AuditService) -> APIRouter:
    r = guard.router("audit")

    @r.get("/audit")
    async def query(
        types: TypesQuery = None,
        actor: ActorQuery = None,
        since: TimeQuery = None,
        until: TimeQuery = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> dict[str, Any]:
        """Audit entries, newest first, filtered by type, actor and time."""
        where = audit_filter(types, actor, since, until)
        events = [entry_json(e) for e in audit.entries(where, limit)]
        return {"events": events, "count": len(events), "total": audit.count(where), "limit": limit}

    @r.get("/audit/export", response_model=None)
    async def export(
        format: FormatQuery = "json",
        types: TypesQuery = None,
        actor: ActorQuery = None,
        since: TimeQuery = None,
        until: TimeQuery = None,
        limit: Annotated[int, Query(ge=1, le=MAX_EXPORT)] = MAX_EXPORT,
    ) -> Any:
        """The whole matching audit log, oldest first, as JSON or CSV."""
        where = audit_filter(types, actor, since, until)
        rows = [entry_json(e) for e in reversed(audit.entries(where, limit))]
        if format == "csv":
            return csv_response(to_csv(rows, AUDIT_COLUMNS), f"paygate-audit-{file_stamp()}.csv")
        return {"exportedAt": iso_time(time.time()), "count": len(rows), "events": rows}

    @r.get("/audit/stats")
    async def stats() -> dict[str, Any]:
        """Totals by type, actor and category; the oldest and newest entry; the retention settings."""
        return audit.stats()

    @r.get("/admin/compliance/export", response_model=None)
    async def compliance(
        framework: Annotated[Literal["soc2", "gdpr", "hipaa"], Query()] = "soc2",
        format: FormatQuery = "json",
        since: TimeQuery = None,
        until: TimeQuery = None,
    ) -> Any:
        """Audit entries of a period, oldest first, each classified into a category and the control of
        `framework` it evidences."""
        where = audit_filter(None, None, since, until)
        rows = [compliance_json(e, framework) for e in reversed(audit.entries(where, MAX_EXPORT))]
        if format == "csv":
            return csv_response(to_csv(rows, COMPLIANCE_COLUMNS), f"paygate-{framework}-{file_stamp()}.csv")
        summary = {c: 0 for c in CATEGORIES}
        for row in rows:
            summary[row["category"]] += 1
        return {
            "framework": framework,
            "frameworkName": FRAMEWORKS[framework]["name"],
            "generatedAt": iso_time(time.time()),
            "period": {"since": iso_time(where.since), "until": iso_time(where.until)},
            "totalEvents": len(rows),
            "summary": summary,
            "controls": FRAMEWORKS[framework]["controls"],
            "events": rows,
        }

    return r
