"""What the read-only key views, per-key reports and dry runs read, behind one service: keys by
reference (revoked ones too), the fleet, the activity log, the backend's priced tools and the dry-run
gate. The routes (reports/routes/) parse, call one method here and shape the answer."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paygate.billing.service import BillingService
from paygate.core.domain_errors import NotFound
from paygate.core.keys import ADMIN_KEY_PREFIX, KEY_PREFIX, mask_key
from paygate.core.records import KeyRecord
from paygate.keys.service import KeyNotFound, KeyService
from paygate.reports.activity import ActivityLog
from paygate.reports.dry_run import Call, DryRunner
from paygate.reports.health import compare_row
from paygate.reports.keys import KeyReports
from paygate.store.base import Store

_ALIAS_SHAPED = re.compile(r"[A-Za-z0-9_-]{1,100}")  # what POST /keys/alias accepts
_SECRET_LIKE = re.compile(r"(?=[A-Za-z]*[0-9])[A-Za-z0-9]{16,}")  # a long run of letters and digits
_KEY_PREFIXES = (KEY_PREFIX, ADMIN_KEY_PREFIX, "ak_")


def masked_ref(ref: str) -> str:
    """How an unmatched reference is reported back: what could be an alias as given; anything else
    (an API key of ours or of another format, an admin key, a token pasted by mistake) masked."""
    if _ALIAS_SHAPED.fullmatch(ref) and not ref.startswith(_KEY_PREFIXES) and not _SECRET_LIKE.search(ref):
        return ref
    return mask_key(ref)


@dataclass(slots=True)
class Context:
    """What one report request computes from: a per-request `KeyReports` (the usage log read once)."""

    reports: KeyReports
    log: ActivityLog
    now: float
    priced_tools: Callable[[], list[dict[str, Any]]]


Compute = Callable[[Context, KeyRecord], dict[str, Any]]


@dataclass(slots=True, eq=False)
class ReportService:
    store: Store
    billing: BillingService
    keys: KeyService
    activity: ActivityLog
    priced_tools: Callable[[], list[dict[str, Any]]]
    dry_runner: DryRunner

    def view_key(self, ref: str) -> KeyRecord:
        """The key a read-only view names by raw value or alias: revoked keys too (a revoked key keeps its
        alias, so its history can be read by the name the operator knows); `NotFound` otherwise."""
        try:
            return self.keys.find(ref)
        except KeyNotFound as exc:
            raise NotFound("API key not found") from exc

    def fleet(self) -> list[KeyRecord]:
        """Every key, revoked ones included."""
        return self.store.list_keys()

    def report(self, ref: str, compute: Compute) -> dict[str, Any]:
        """One per-key report of the key `ref` names."""
        record = self.view_key(ref)
        context = Context(KeyReports(self.store, self.billing), self.activity, time.time(), self.priced_tools)
        return compute(context, record)

    def compare(self, refs: list[str]) -> dict[str, Any]:
        """Side by side; unknown references are listed masked in `notFound`, a 404 when none is known."""
        found: dict[str, KeyRecord] = {}
        not_found: list[str] = []
        for ref in refs:
            try:
                record = self.view_key(ref)
            except NotFound:
                not_found.append(masked_ref(ref))
                continue
            found.setdefault(record.key_hash, record)  # a key named twice (by key and alias) is shown once
        if not found:
            raise NotFound("API key not found", notFound=not_found)
        reports, now = KeyReports(self.store, self.billing), time.time()
        rows = [compare_row(reports, record, now) for record in found.values()]
        out: dict[str, Any] = {"compared": len(rows), "keys": rows}
        if not_found:
            out["notFound"] = not_found
        return out

    def dry_run(self, ref: str, call: Call, client_ip: str | None, country: str | None) -> dict[str, Any]:
        """Would this call of the key `ref` names be allowed now? Nothing is charged, counted or published."""
        return self.dry_runner.one(self.view_key(ref), call, client_ip, country)

    def dry_run_batch(self, ref: str, calls: list[Call], client_ip: str | None, country: str | None) -> dict[str, Any]:
        """Would these calls, made in order, all be allowed?"""
        return self.dry_runner.batch(self.view_key(ref), calls, client_ip, country)
