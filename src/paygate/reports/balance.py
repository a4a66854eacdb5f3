"""A key holder's own credit history: GET /balance/history.

The ledger (every credit movement: the opening balance, per-call charges, refunds, top-ups, transfers,
reservations, …) is read newest first through the store's bounded `ledger_page`, never whole: one
answer holds at most HISTORY_MAX entries and looks through at most SCAN_MAX ledger rows, and
`nextBefore` continues where it stopped. Nothing is written; the hot path is untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from paygate.billing.service import BillingService
from paygate.billing.usage import client_record
from paygate.reports.keys import KeyReports, ledger_row
from paygate.store.base import Store

HISTORY_DEFAULT = 50  # entries per answer unless `limit` says otherwise (the reference's default)
HISTORY_MAX = 100  # the most one answer holds (the reference keeps 100 per key)
SCAN_MAX = 5_000  # ledger rows one answer looks through when a `type` filter skips most of them
SCAN_PAGE = 500
VELOCITY_HOURS = 24


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    limit: int = HISTORY_DEFAULT
    type: str | None = None
    since: float | None = None
    before: int | None = None


@dataclass(slots=True, eq=False)
class BalanceHistory:
    store: Store
    billing: BillingService

    def history(self, raw: str | None, query: HistoryQuery, now: float | None = None) -> dict[str, Any]:
        """The presenting key's credit movements, newest first, with its 24-hour spending velocity."""
        record = client_record(self.store, raw, self.billing.credentials)
        now = time.time() if now is None else now
        entries: list[dict[str, Any]] = []
        cursor, scanned, exhausted = query.before, 0, False
        while len(entries) < query.limit and scanned < SCAN_MAX:
            page = self.store.ledger_page(
                record.key_hash, min(SCAN_PAGE, SCAN_MAX - scanned), since=query.since, before=cursor
            )
            for seq, entry in page:
                scanned += 1
                cursor = seq
                row = ledger_row(entry)
                if query.type is None or row["type"] == query.type:
                    del row["ts"]
                    entries.append(row)
                    if len(entries) == query.limit:
                        break
            if len(page) < SCAN_PAGE and len(entries) < query.limit:
                exhausted = True
                break
        reports = KeyReports(self.store, self.billing)
        reports.preload(record, now - VELOCITY_HOURS * 3600)
        return {
            "key": record.masked,
            "entries": entries,
            "total": self.store.ledger_count(record.key_hash),
            "nextBefore": None if exhausted or cursor == query.before else cursor,
            "velocity": reports.velocity(record, VELOCITY_HOURS, now)["velocity"],
        }

    def rate_limits(self, raw: str | None, now: float | None = None) -> dict[str, Any]:
        """The presenting key's rate windows, global and per tool, as the admin's /keys/rate-limit-status
        shows them: peeked, so looking never uses a slot."""
        record = client_record(self.store, raw, self.billing.credentials)
        windows = KeyReports(self.store, self.billing).rate_limits(record, time.time() if now is None else now)
        del windows["alias"]  # the operator's handle for the key, not the holder's (GET /balance has none)
        return windows
