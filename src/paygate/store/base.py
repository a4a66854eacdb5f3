"""The Store protocol: what every backend (SQLite now, Redis later) provides.

`Store` is the union of the role protocols of `store/roles.py` plus a lifecycle, and it hands out
the audit log and the webhook outbox as members, so nothing outside `store/` ever needs a database
connection. New code should ask for the narrowest role it uses; `Store` keeps every existing caller
working. The contract every implementation must meet is `tests/unit/store_contract/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from paygate.core.records import KeyRecord
from paygate.store.audit_log import AuditLog
from paygate.store.documents import Doc
from paygate.store.errors import ChargeNotRecorded, Conflict
from paygate.store.outbox import Outbox
from paygate.store.roles import Documents, KeyTable, Meta, Money, RateWindows, UsageLog
from paygate.store.rollups import CallRollups

__all__ = ["ChargeNotRecorded", "Conflict", "Store", "total_credits"]


class Store(KeyTable, Money, RateWindows, UsageLog, Documents, Meta, Protocol):
    def open(self) -> None: ...
    def close(self) -> None: ...
    # new keys and documents, all or nothing (import-state); raises errors.Conflict when one is taken
    def insert_all(self, records: Sequence[KeyRecord], docs: Sequence[tuple[str, str, Doc]], memo: str) -> None: ...

    @property
    def audit(self) -> AuditLog: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def rollups(self) -> CallRollups: ...


def total_credits(records: Iterable[KeyRecord]) -> int:
    return sum(r.credits for r in records if r.active)
