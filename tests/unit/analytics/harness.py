"""Reports computed without HTTP, for property tests: a real in-memory SQLiteStore, keys created through the
store, call facts recorded as the rollup feed records them, reports run by the real AnalyticsService.

    with world(now) as w:
        a = w.key("alice", credits=100, namespace="prod")
        w.facts([CallFact(now - 60, a.key_hash, "search", "prod", "", credits=5)])
        out = w.run("tool-popularity")           # the report's JSON answer (a dict)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from paygate.analytics.catalog import CATALOG
from paygate.analytics.engine import AnalyticsService
from paygate.billing.service import BillingService
from paygate.core.keys import generate_api_key, hash_key, mask_parts
from paygate.core.pricing import PriceBook
from paygate.core.records import KeyRecord
from paygate.events.hub import EventHub
from paygate.metrics import Metrics
from paygate.store.rollups import CallFact
from paygate.store.sqlite import SQLiteStore

REPORTS = {r.name: r for r in CATALOG}


@dataclass
class World:
    store: SQLiteStore
    service: AnalyticsService
    now: float

    def key(self, name: str | None = None, credits: int = 0, **fields: Any) -> KeyRecord:
        """A key as `POST /keys` makes it; `fields` set any KeyRecord field (total_spent, namespace, …)."""
        raw = generate_api_key()
        prefix, last4 = mask_parts(raw)
        record = KeyRecord(
            hash_key(raw),
            prefix,
            last4,
            name or f"k-{uuid.uuid4().hex[:6]}",
            credits,
            fields.pop("created_at", self.now - 86400),
        )
        for field_name, value in fields.items():
            setattr(record, field_name, value)
        self.store.create_key(record)
        return record

    def facts(self, facts: Sequence[CallFact]) -> None:
        self.store.rollups.record(list(facts))

    def run(self, name: str, **params: Any) -> dict[str, Any]:
        report = REPORTS[name]
        return self.service.run(report, report.params.model_validate(params))


@contextmanager
def world(now: float, global_rate_limit: int = 0) -> Iterator[World]:
    store = SQLiteStore()
    store.open()
    try:
        billing = BillingService(
            store, PriceBook(1, global_rate_limit), Metrics(), shadow=False, refund_on_failure=False
        )
        service = AnalyticsService(store, billing, EventHub(), now - 3600, lambda: [], clock=lambda: now)
        yield World(store, service, now)
    finally:
        store.close()
