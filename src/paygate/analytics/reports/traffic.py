"""Reports: traffic (docs/analytics-traffic.md)."""

from __future__ import annotations

from paygate.analytics.engine import Report

REPORTS: tuple[Report, ...] = ()
