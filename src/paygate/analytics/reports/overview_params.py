"""Query parameters and key selection the overview reports share (docs/analytics-overview.md).

Key-state reports (key-status, key-portfolio, key-age, key-churn, key-health-overview, security,
compliance) describe keys as they are now; their `since` / `until` select the cohort of keys created in the
range (whole hours, as every range). `namespace` and `group` narrow the keys further.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from paygate.analytics.engine import ReportParams
from paygate.analytics.facts import Facts
from paygate.analytics.window import Window
from paygate.core.records import KeyRecord
from paygate.store.rollups import HOUR

Severity = Literal["critical", "warning", "info"]
SEVERITY_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
DAY_SECONDS = 86400.0


class KeySelectParams(ReportParams):
    """`namespace`: keys of that namespace; `group`: keys of that group (its id or name)."""

    namespace: str | None = Field(default=None, min_length=1, max_length=100)
    group: str | None = Field(default=None, min_length=1, max_length=200)


class KeyFilterParams(KeySelectParams):
    """`limit`: rows in the report's lists (counts always cover every selected key)."""

    limit: int = Field(default=100, ge=1, le=10_000)


class SeverityParams(KeyFilterParams):
    severity: Severity | None = None


def filtered(f: Facts, keys: list[KeyRecord], params: KeySelectParams) -> list[KeyRecord]:
    """`keys` narrowed by the request's namespace and group."""
    gid = None if params.group is None else f.find_group(params.group)
    return [
        k
        for k in keys
        if (params.namespace is None or k.namespace == params.namespace) and (gid is None or k.group_id == gid)
    ]


def cohort(f: Facts, params: KeySelectParams) -> list[KeyRecord]:
    """Every key (revoked ones included) created in the range and matching the filters, oldest first."""
    w = f.window
    start = None if w.since_hour is None else w.since_hour * HOUR
    end = None if w.until_hour is None else (w.until_hour + 1) * HOUR
    keys = [k for k in f.all_keys() if (start is None or k.created_at >= start) and (end is None or k.created_at < end)]
    return filtered(f, keys, params)


def hour_window(f: Facts) -> Window:
    """The range as whole hours, for reads that are not rollups (the audit log)."""
    w = f.window
    start = None if w.since_hour is None else float(w.since_hour * HOUR)
    end = None if w.until_hour is None else (w.until_hour + 1) * HOUR - 0.001
    return Window(w.now, start, end)


def is_live(k: KeyRecord) -> bool:
    """Can call (not revoked, not suspended): expired keys included, as `Facts.live_keys`."""
    return k.active and not k.suspended


def hours_until(ts: float, now: float) -> float:
    return round((ts - now) / HOUR, 1)
