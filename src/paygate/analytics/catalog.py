"""Every report the gateway serves, in route order: each family module's `REPORTS`."""

from __future__ import annotations

from paygate.analytics.engine import Report
from paygate.analytics.reports import consumers, money, overview, tools, traffic

CATALOG: tuple[Report, ...] = (
    *overview.REPORTS,
    *traffic.REPORTS,
    *money.REPORTS,
    *consumers.REPORTS,
    *tools.REPORTS,
)
