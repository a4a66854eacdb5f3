"""The audit log over HTTP: GET /audit, /audit/export, /audit/stats and /admin/compliance/export.

All read-only (viewer role). The log itself is written by `AuditService` (`rt.audit`), a deferred
subscriber of the event bus set up in `app.build_runtime`.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from paygate.api.common import ApiError, require_admin
from paygate.services.audit import (
    AUDIT_COLUMNS,
    CATEGORIES,
    COMPLIANCE_COLUMNS,
    FRAMEWORKS,
    compliance_json,
    entry_json,
    to_csv,
)
from paygate.services.keys import iso_time
from paygate.services.runtime import Runtime
from paygate.store.audit_log import AuditFilter

MAX_LIMIT = 1000  # GET /audit
MAX_EXPORT = 100_000  # exports (retention keeps far fewer by default)
MAX_TYPES = 50
_TYPE_OK = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

TypesQuery = Annotated[str | None, Query(max_length=4000, description="comma-separated event types")]
ActorQuery = Annotated[str | None, Query(min_length=1, max_length=200, description="exact actor")]
TimeQuery = Annotated[str | None, Query(max_length=64, description="ISO 8601; UTC when no zone is given")]
FormatQuery = Annotated[Literal["json", "csv"], Query(description="json or csv")]


def _parse_time(name: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, f"Invalid request: {name} must be an ISO 8601 date-time") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def audit_filter(types: str | None, actor: str | None, since: str | None, until: str | None) -> AuditFilter:
    """The filter a request names, or a 400."""
    names: tuple[str, ...] = ()
    if types is not None:
        names = tuple(dict.fromkeys(t.strip() for t in types.split(",") if t.strip()))
        if not names:
            raise ApiError(400, "Invalid request: types must name at least one event type")
        if len(names) > MAX_TYPES:
            raise ApiError(400, f"Invalid request: types names at most {MAX_TYPES} event types")
        bad = next((t for t in names if not _TYPE_OK.match(t)), None)
        if bad is not None:
            raise ApiError(400, f"Invalid request: types: {bad[:64]!r} is not an event type")
    start, end = _parse_time("since", since), _parse_time("until", until)
    if start is not None and end is not None and start > end:
        raise ApiError(400, "Invalid request: since must not be after until")
    return AuditFilter(names, actor, start, end)


def _csv_response(text: str, filename: str) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def router(rt: Runtime) -> APIRouter:
    audit = rt.audit
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["audit"])

    @r.get("/audit")
    async def query(types: TypesQuery = None, actor: ActorQuery = None, since: TimeQuery = None,
                    until: TimeQuery = None,
                    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100) -> dict[str, Any]:
        """Audit entries, newest first, filtered by type, actor and time."""
        where = audit_filter(types, actor, since, until)
        events = [entry_json(e) for e in audit.entries(where, limit)]
        return {"events": events, "count": len(events), "total": audit.count(where), "limit": limit}

    @r.get("/audit/export", response_model=None)
    async def export(format: FormatQuery = "json", types: TypesQuery = None, actor: ActorQuery = None,
                     since: TimeQuery = None, until: TimeQuery = None,
                     limit: Annotated[int, Query(ge=1, le=MAX_EXPORT)] = MAX_EXPORT) -> Any:
        """The whole matching audit log, oldest first, as JSON or CSV."""
        where = audit_filter(types, actor, since, until)
        rows = [entry_json(e) for e in reversed(audit.entries(where, limit))]
        if format == "csv":
            return _csv_response(to_csv(rows, AUDIT_COLUMNS), f"paygate-audit-{_stamp()}.csv")
        return {"exportedAt": iso_time(time.time()), "count": len(rows), "events": rows}

    @r.get("/audit/stats")
    async def stats() -> dict[str, Any]:
        """Totals by type, actor and category; the oldest and newest entry; the retention settings."""
        return audit.stats()

    @r.get("/admin/compliance/export", response_model=None)
    async def compliance(framework: Annotated[Literal["soc2", "gdpr", "hipaa"], Query()] = "soc2",
                         format: FormatQuery = "json", since: TimeQuery = None,
                         until: TimeQuery = None) -> Any:
        """Audit entries of a period, oldest first, each classified into a category and the control of
        `framework` it evidences."""
        where = audit_filter(None, None, since, until)
        rows = [compliance_json(e, framework) for e in reversed(audit.entries(where, MAX_EXPORT))]
        if format == "csv":
            return _csv_response(to_csv(rows, COMPLIANCE_COLUMNS), f"paygate-{framework}-{_stamp()}.csv")
        summary = {c: 0 for c in CATEGORIES}
        for row in rows:
            summary[row["category"]] += 1
        return {"framework": framework, "frameworkName": FRAMEWORKS[framework]["name"],
                "generatedAt": iso_time(time.time()),
                "period": {"since": iso_time(where.since), "until": iso_time(where.until)},
                "totalEvents": len(rows), "summary": summary,
                "controls": FRAMEWORKS[framework]["controls"], "events": rows}

    return r
