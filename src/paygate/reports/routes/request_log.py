"""The request log over HTTP: GET /requests, /requests/export and /tools/stats.

Read-only admin routes (viewer role) over `reports/request_log.RequestLog`, the in-memory ring of
the newest tool calls, which the composition root fills and subscribes to the event bus.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from paygate.api.common import AdminGuard
from paygate.api.query import FormatQuery, TimeQuery, attachment, csv_response, file_stamp, parse_window
from paygate.audit.service import to_csv
from paygate.core.values import iso_time
from paygate.reports import tool_stats
from paygate.reports.request_log import REQUEST_COLUMNS, RequestFilter, RequestLog, summary

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000

KeyQuery = Annotated[str | None, Query(min_length=1, max_length=200, description="part of the masked key")]
ToolQuery = Annotated[str | None, Query(min_length=1, max_length=200, description="exact tool name")]
StatusQuery = Annotated[Literal["allowed", "denied"] | None, Query(description="allowed or denied")]


def request_filter(
    key: str | None, tool: str | None, status: Literal["allowed", "denied"] | None, since: str | None, until: str | None
) -> RequestFilter:
    """The filter a request names, or a 400."""
    start, end = parse_window(since, until)
    return RequestFilter(key, tool, status, start, end)


def router(guard: AdminGuard, log: RequestLog) -> APIRouter:
    r = guard.router("request log")

    @r.get("/requests")
    async def requests(
        key: KeyQuery = None,
        tool: ToolQuery = None,
        status: StatusQuery = None,
        since: TimeQuery = None,
        until: TimeQuery = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> dict[str, Any]:
        """The newest tool calls, newest first, filtered and paged; the summary covers every match."""
        matched = log.select(request_filter(key, tool, status, since, until))
        return {
            "total": len(matched),
            "offset": offset,
            "limit": limit,
            "summary": summary(matched),
            "requests": [e.json() for e in matched[offset : offset + limit]],
        }

    @r.get("/requests/export", response_model=None)
    async def export(
        format: FormatQuery = "json",
        key: KeyQuery = None,
        tool: ToolQuery = None,
        status: StatusQuery = None,
        since: TimeQuery = None,
        until: TimeQuery = None,
    ) -> Response:
        """Every matching entry of the request log, oldest first, as a JSON or CSV download."""
        rows = [e.json() for e in reversed(log.select(request_filter(key, tool, status, since, until)))]
        name = f"paygate-requests-{file_stamp()}"
        if format == "csv":
            return csv_response(to_csv(rows, REQUEST_COLUMNS), f"{name}.csv")
        body = {"exportedAt": iso_time(time.time()), "count": len(rows), "requests": rows}
        return attachment(orjson.dumps(body), "application/json", f"{name}.json")

    @r.get("/tools/stats")
    async def stats(tool: ToolQuery = None, since: TimeQuery = None, until: TimeQuery = None) -> dict[str, Any]:
        """Per-tool call counts, success rate, credits and latency from the request log; with `tool`,
        one tool's detail (p95 latency, denials by reason, top 10 keys)."""
        entries = log.select(request_filter(None, None, None, since, until))
        return tool_stats.detail(tool, entries) if tool is not None else tool_stats.overview(entries)

    return r
