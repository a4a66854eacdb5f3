"""Reports: tools, namespaces and key groups (docs/analytics-tools.md)."""

from __future__ import annotations

from paygate.analytics.engine import Report
from paygate.analytics.reports import tools_groups, tools_namespaces, tools_usage

REPORTS: tuple[Report, ...] = (*tools_usage.REPORTS, *tools_namespaces.REPORTS, *tools_groups.REPORTS)
