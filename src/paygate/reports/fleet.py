"""Fleet views over many keys: the filtered, sorted, paginated key list and aggregate statistics (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from paygate.core.records import KeyRecord
from paygate.reports.keys import key_status

SORT_FIELDS: dict[str, Callable[[KeyRecord], Any]] = {
    "createdAt": lambda r: r.created_at,
    "name": lambda r: r.name.lower(),
    "credits": lambda r: r.credits,
    "lastUsedAt": lambda r: r.last_used_at or 0.0,  # never used sorts as oldest
    "totalSpent": lambda r: r.total_spent,
    "totalCalls": lambda r: r.total_calls,
}


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """What GET /keys narrows the list to; None means "any"."""

    namespace: str | None = None
    group: str | None = None
    status: str | None = None  # active | suspended | expired | revoked
    active: bool | None = None  # the reference's boolean filters, each on its own
    suspended: bool | None = None
    expired: bool | None = None
    name_prefix: str | None = None
    min_credits: int | None = None
    max_credits: int | None = None

    def matches(self, r: KeyRecord, now: float) -> bool:
        expired = r.expires_at is not None and now >= r.expires_at
        checks = (
            self.namespace is None or r.namespace == self.namespace,
            self.group is None or r.group_id == self.group,
            self.status is None or key_status(r, now) == self.status,
            self.active is None or r.active == self.active,
            self.suspended is None or r.suspended == self.suspended,
            self.expired is None or expired == self.expired,
            self.name_prefix is None or r.name.lower().startswith(self.name_prefix.lower()),
            self.min_credits is None or r.credits >= self.min_credits,
            self.max_credits is None or r.credits <= self.max_credits,
        )
        return all(checks)


def page(
    records: Iterable[KeyRecord], flt: KeyFilter, sort_by: str, descending: bool, offset: int, limit: int, now: float
) -> tuple[list[KeyRecord], int]:
    """One page of the matching keys and how many matched in all. Ties keep creation order."""
    matching = [r for r in records if flt.matches(r, now)]
    matching.sort(key=lambda r: r.created_at)
    matching.sort(key=SORT_FIELDS[sort_by], reverse=descending)  # stable: ties stay in creation order
    return matching[offset : offset + limit], len(matching)


def stats(records: Iterable[KeyRecord], now: float, namespace: str | None = None) -> dict[str, Any]:
    """Counts by status (each key counted once), credit aggregates and namespace/group breakdowns."""
    scoped = [r for r in records if namespace is None or r.namespace == namespace]
    by_status = Counter(key_status(r, now) for r in scoped)
    # A key retired by rotation keeps its counters, which its successor also took over: sum them once.
    counted = [r for r in scoped if "rotatedTo" not in r.extra]
    spent = sum(r.total_spent for r in counted)
    remaining = sum(r.credits for r in counted)
    out: dict[str, Any] = {
        "total": len(scoped),
        **{s: by_status.get(s, 0) for s in ("active", "suspended", "expired", "revoked")},
        "totalCreditsAllocated": spent + remaining,
        "totalCreditsSpent": spent,
        "totalCreditsRemaining": remaining,
        "totalCalls": sum(r.total_calls for r in counted),
        "byNamespace": dict(sorted(Counter(r.namespace for r in scoped).items())),
        "byGroup": dict(sorted(Counter(r.group_id for r in scoped if r.group_id is not None).items())),
    }
    if namespace is not None:
        out["filteredByNamespace"] = namespace
    return out
