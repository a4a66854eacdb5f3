"""The report engine: a report is a definition (name, query parameters, a computation over `Facts`, the list
CSV exports), and the catalog (catalog.py) is the list of them. One route family serves them all
(analytics/routes/reports.py); the service here parses the window, builds the facts and shapes CSV.

A report's computation is pure over its facts: it reads, never writes, so every report is read-only and
`viewer` may call it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from paygate.analytics.facts import Facts
from paygate.analytics.window import Window
from paygate.billing.service import BillingService
from paygate.core.csv_cells import csv_text
from paygate.core.domain_errors import Invalid
from paygate.core.values import iso_time
from paygate.events.hub import EventHub
from paygate.store.base import Store

MAX_CSV_ROWS = 100_000


class ReportParams(BaseModel):
    """Every report's query string: camelCase names, unknown names rejected (a 400), strings parsed.
    `since` / `until`: ISO 8601 dates or date-times (UTC without a zone), counted in whole hours;
    `format`: json (default) or csv (the report's main list as a table)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", populate_by_name=True)

    since: str | None = Field(default=None, max_length=64)
    until: str | None = Field(default=None, max_length=64)
    format: Literal["json", "csv"] = "json"


class LimitParams(ReportParams):
    limit: int = Field(default=10, ge=1, le=1000, description="rows in the report's ranked lists")


class NamespaceParams(LimitParams):
    namespace: str | None = Field(default=None, min_length=1, max_length=100)


Compute = Callable[[Facts, Any], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Report:
    """`GET /admin/<name>` (or `path`). `table` names the list a CSV export holds (a dotted path into the
    answer: "tools", "summary.byTool"); without one, CSV holds the answer's flattened top level."""

    name: str
    compute: Compute
    summary: str
    params: type[ReportParams] = ReportParams
    table: str | None = None
    path: str | None = None

    @property
    def route(self) -> str:
        return self.path or f"/admin/{self.name}"


@dataclass(slots=True, eq=False)
class AnalyticsService:
    store: Store
    billing: BillingService
    events: EventHub
    started_at: float
    priced_tools: Callable[[], list[dict[str, Any]]]
    clock: Callable[[], float] = time.time
    held: Callable[[], None] = lambda: None  # writes the feed's held facts (feed.RollupFeed.flush)

    def facts(self, params: ReportParams) -> Facts:
        self.events.flush()  # every call answered before this request is counted…
        self.held()  # …and written
        window = Window.parse(self.clock(), params.since, params.until)
        return Facts(self.store, self.billing, window, self.started_at, self.priced_tools)

    def run(self, report: Report, params: ReportParams) -> dict[str, Any]:
        facts = self.facts(params)
        out = report.compute(facts, params)
        out.setdefault("generatedAt", iso_time(facts.now))
        return out

    def csv(self, report: Report, answer: dict[str, Any]) -> str:
        return to_csv(table_of(answer, report.table))


def table_of(answer: dict[str, Any], path: str | None) -> list[dict[str, Any]]:
    """The rows a CSV export holds: the list at `path`, or the answer itself as one row."""
    if path is None:
        return [answer]
    node: Any = answer
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):  # a mapping of name -> values: one row per entry
        return [{"name": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in node.items()]
    if not isinstance(node, list):
        raise Invalid(f"Invalid request: this report has no {path} to export")
    return [r if isinstance(r, dict) else {"value": r} for r in node]


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted columns; lists are joined with `;`."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        column = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(flatten(value, column + "."))
        elif isinstance(value, list):
            out[column] = ";".join(str(v) for v in value)
        else:
            out[column] = "" if value is None else value
    return out


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    flat = [flatten(r) for r in rows][:MAX_CSV_ROWS]
    columns: dict[str, None] = {}
    for r in flat:
        columns.update(dict.fromkeys(r))
    return csv_text(list(columns), ([r.get(c, "") for c in columns] for r in flat))
