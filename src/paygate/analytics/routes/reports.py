"""`GET /analytics` and the `/admin/*` reports: one route per catalog entry, all built the same way. Each
parses its query model (unknown or malformed parameters: 400), runs the report and answers JSON, or CSV
with `?format=csv`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter

from paygate.analytics.catalog import CATALOG
from paygate.analytics.engine import AnalyticsService, Report, ReportParams
from paygate.api.common import AdminGuard
from paygate.api.query import add_query_route, csv_response, file_stamp


def _run(service: AnalyticsService, report: Report) -> Callable[[ReportParams], Awaitable[Any]]:
    async def run(params: ReportParams) -> Any:
        answer = service.run(report, params)
        if params.format == "csv":
            return csv_response(service.csv(report, answer), f"{report.name}-{file_stamp()}.csv")
        return answer

    return run


def router(guard: AdminGuard, service: AnalyticsService) -> APIRouter:
    r = guard.router("analytics")
    for report in CATALOG:
        add_query_route(
            r,
            report.route,
            _run(service, report),
            report.params,
            summary=report.summary,
            name="report_" + report.name.replace("-", "_"),
            response_model=None,
            responses={200: {"content": {"text/csv": {}}}},
        )
    return r
