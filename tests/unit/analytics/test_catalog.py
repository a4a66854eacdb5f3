"""The catalog serves every report issue 15 names (the reference's /analytics and 63 /admin/* reports), each
once, and every one answers on an empty store."""

from __future__ import annotations

import time

from paygate.analytics.catalog import CATALOG
from tests.unit.analytics.harness import REPORTS, world

ADMIN_REPORTS = [
    "notifications",
    "dashboard",
    "lifecycle",
    "costs",
    "rate-limits",
    "quotas",
    "denials",
    "traffic",
    "security",
    "revenue",
    "key-portfolio",
    "anomalies",
    "forecast",
    "compliance",
    "sla",
    "capacity",
    "dependencies",
    "latency",
    "error-trends",
    "credit-flow",
    "key-age",
    "namespace-usage",
    "audit-summary",
    "group-performance",
    "request-trends",
    "key-status",
    "consumer-insights",
    "system-health",
    "tool-adoption",
    "credit-efficiency",
    "access-heatmap",
    "key-churn",
    "tool-correlation",
    "consumer-segmentation",
    "credit-distribution",
    "response-time-distribution",
    "consumer-lifetime-value",
    "tool-revenue",
    "consumer-retention",
    "error-breakdown",
    "credit-utilization",
    "namespace-revenue",
    "group-revenue",
    "peak-usage",
    "consumer-activity",
    "tool-popularity",
    "credit-allocation",
    "daily-summary",
    "key-ranking",
    "hourly-traffic",
    "tool-error-rate",
    "consumer-spend-velocity",
    "namespace-activity",
    "credit-burn-rate",
    "consumer-risk-score",
    "revenue-forecast",
    "group-activity",
    "credit-waste",
    "tool-profitability",
    "consumer-growth",
    "namespace-comparison",
    "key-health-overview",
    "system-overview",
]


def test_every_report_is_served_once() -> None:
    routes = [r.route for r in CATALOG]
    assert len(routes) == len(set(routes)), "a path served twice"
    assert len(ADMIN_REPORTS) == 63
    assert set(routes) == {"/analytics", *(f"/admin/{name}" for name in ADMIN_REPORTS)}


def test_every_report_answers_on_an_empty_store() -> None:
    with world(time.time()) as w:
        for name in REPORTS:
            out = w.run(name)
            assert isinstance(out, dict) and out["generatedAt"], name
