"""Scheduled reports wired (webhooks/scheduled.py, docs/scheduled-reports.md): the analytics reports as
the report builders, the ticker that sends due periods, the stop that lets deliveries in flight finish,
metrics and the router."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.analytics.catalog import CATALOG
from paygate.analytics.engine import AnalyticsService
from paygate.runtime import Runtime
from paygate.webhooks.routes import scheduled as scheduled_routes
from paygate.webhooks.scheduled import REPORTS, ScheduledReports


def scheduled_reports_router(rt: Runtime, analytics: AnalyticsService) -> APIRouter:
    by_name = {r.name: r for r in CATALOG if r.name in {name for name, _ in REPORTS.values()}}

    def run_report(name: str, params: dict[str, Any]) -> dict[str, Any]:
        report = by_name[name]
        return analytics.run(report, report.params.model_validate(params))

    reports = ScheduledReports(rt.store, rt.events, rt.settings, run_report)
    rt.tickers.append(reports.tick)
    rt.on_stop.append(reports.stop)
    rt.metrics.registry.register(ScheduledReportCollector(reports))
    return scheduled_routes.router(rt.guard, reports)


class ScheduledReportCollector(Collector):
    def __init__(self, reports: ScheduledReports) -> None:
        self.reports = reports

    def collect(self) -> Iterable[Metric]:
        r = self.reports
        yield GaugeMetricFamily("paygate_scheduled_reports", "Scheduled reports stored", value=len(r.schedules()))
        sent = CounterMetricFamily(
            "paygate_scheduled_report_deliveries", "Scheduled report deliveries by outcome", labels=["status"]
        )
        sent.add_metric(["delivered"], r.delivered)
        sent.add_metric(["failed"], r.failed)
        yield sent
