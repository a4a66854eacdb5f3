"""Per-key reports: usage, rate-limit and quota status, credit history, velocity, health, dashboard, activity,
tool availability.

Each report is one entry of `REPORTS`: a path, the query parameters it accepts (a model: unknown or malformed
parameters are a 400) and a function from the resolved key to the answer. One generic route serves them all:
`ReportService.report` resolves `?key=` (the key or its alias; 404 when unknown) and computes. All read-only,
so `viewer` may call them, and all work on suspended, expired and revoked keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from paygate.api.common import AdminGuard, KeyRefField
from paygate.api.query import add_query_route
from paygate.core.records import KeyRecord
from paygate.reports.activity import timeline
from paygate.reports.health import dashboard, health
from paygate.reports.keys import HISTORY_CAP
from paygate.reports.service import Context, ReportService
from paygate.reports.tools import tools_available


class QueryParams(BaseModel):
    """Query strings: camelCase names only, unknown names rejected (strings are parsed, as query strings must)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")


class KeyParams(QueryParams):
    key: KeyRefField


class SinceParams(KeyParams):
    since: datetime | None = Field(default=None, description="ISO 8601; without a zone, UTC")


class HistoryParams(SinceParams):
    type: str | None = Field(default=None, pattern=r"^[a-z_]{1,32}$", description="initial, topup, deduction, …")
    limit: int = Field(default=HISTORY_CAP, ge=1, le=HISTORY_CAP)


class VelocityParams(KeyParams):
    window: int = Field(default=24, ge=1, le=720, description="analysis window in hours")


class ActivityParams(SinceParams):
    limit: int = Field(default=50, ge=1, le=200)


def epoch(when: datetime | None) -> float | None:
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


Compute = Callable[[Context, KeyRecord, Any], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Report:
    path: str
    params: type[KeyParams]
    compute: Compute
    summary: str


REPORTS: tuple[Report, ...] = (
    Report(
        "/keys/usage",
        SinceParams,
        lambda c, k, p: c.reports.usage(k, epoch(p.since)),
        "Per-tool stats, hourly time series, deny reasons and the 50 newest events of one key.",
    ),
    Report(
        "/keys/rate-limit-status",
        KeyParams,
        lambda c, k, p: c.reports.rate_limits(k, c.now),
        "The key's global and per-tool rate windows, peeked (looking never uses a slot).",
    ),
    Report(
        "/keys/quota-status",
        KeyParams,
        lambda c, k, p: c.reports.quota(k),
        "Daily and monthly quota use, limits and resets, and where the quota comes from.",
    ),
    Report(
        "/keys/credit-history",
        HistoryParams,
        lambda c, k, p: c.reports.credit_history(k, p.type, p.limit, epoch(p.since)),
        "The key's credit movements, newest first, with balance before and after (at most 100).",
    ),
    Report(
        "/keys/spending-velocity",
        VelocityParams,
        lambda c, k, p: c.reports.velocity(k, p.window, c.now),
        "Burn rate over the window and when the credits would run out at that rate.",
    ),
    Report(
        "/keys/health",
        KeyParams,
        lambda c, k, p: health(c.reports, k, c.now),
        "A 0-100 health score from balance, quota, rate-limit and error-rate components, with issues.",
    ),
    Report(
        "/keys/dashboard",
        KeyParams,
        lambda c, k, p: dashboard(c.reports, c.log, k, c.now),
        "Everything about one key in one answer.",
    ),
    Report(
        "/keys/activity",
        ActivityParams,
        lambda c, k, p: timeline(c.reports, c.log, k, epoch(p.since), p.limit),
        "Admin events, credit movements and tool calls of one key, newest first.",
    ),
    Report(
        "/tools/available",
        KeyParams,
        lambda c, k, p: tools_available(c.reports, k, c.priced_tools()),
        "Every backend tool as this key sees it: ACL, effective price, affordability, rate windows.",
    ),
)


def _run(service: ReportService, report: Report) -> Callable[[KeyParams], Awaitable[dict[str, Any]]]:
    async def run(params: KeyParams) -> dict[str, Any]:
        return service.report(params.key, lambda context, record: report.compute(context, record, params))

    return run


def router(guard: AdminGuard, service: ReportService) -> APIRouter:
    r = guard.router("key-reports")
    for report in REPORTS:
        add_query_route(
            r,
            report.path,
            _run(service, report),
            report.params,
            summary=report.summary,
            name=report.path.strip("/").replace("/", "_").replace("-", "_"),
        )
    return r
