"""Reports: traffic (docs/analytics-traffic.md). Volume (traffic_volume), latency (traffic_latency), errors
and denials (traffic_errors), capacity and dependencies (traffic_capacity)."""

from __future__ import annotations

from paygate.analytics.engine import Report
from paygate.analytics.reports import traffic_capacity, traffic_errors, traffic_latency, traffic_volume

REPORTS: tuple[Report, ...] = (
    *traffic_volume.REPORTS,
    *traffic_latency.REPORTS,
    *traffic_errors.REPORTS,
    *traffic_capacity.REPORTS,
)
