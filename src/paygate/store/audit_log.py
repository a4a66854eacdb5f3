"""The durable audit log as the store offers it: the `AuditLog` role and the values it speaks in.

Rows arrive in batches from the event bus (one transaction per batch, with the event's own id),
off the tool-call path. Retention is enforced by `prune`, which the audit service calls from a
ticker: older than a maximum age, or beyond a maximum count (the oldest go first), counted apart
for per-call traffic (`gate.allow` / `gate.deny`), for failed admin authentications
(`admin.auth_failed`, `admin.auth_throttled`) and for everything else, so neither a busy gateway's
traffic nor a stranger's wrong keys ever push its admin history out. Every store provides one as
`store.audit`; the SQLite one is `store/sqlite_audit.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from paygate.store.base import Store

TRAFFIC_TYPES = ("gate.allow", "gate.deny")  # per-call events, retained apart from the rest
# Failed admin authentications: anyone can make these, so they have a budget of their own.
AUTH_FAILURE_TYPES = ("admin.auth_failed", "admin.auth_throttled")
AUTH_FAILURE_MAX_ENTRIES = 1000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    timestamp: float
    type: str
    actor: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries a query covers; empty `types` means every type. `since`/`until` are inclusive."""

    types: tuple[str, ...] = ()
    actor: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True, slots=True)
class AuditStats:
    total: int
    oldest: float | None
    newest: float | None
    by_type: dict[str, int] = field(default_factory=dict)
    by_actor: dict[str, int] = field(default_factory=dict)


class AuditLog(Protocol):
    """Append-only event history with retention. Ids grow with insertion order (newest = highest)."""

    def append(self, ts: float, type_: str, actor: str, data: dict[str, Any]) -> int: ...
    # `(id, ts, type, actor, data)` rows in one transaction; an existing id is replaced (a restored row)
    def append_many(self, rows: Sequence[tuple[int, float, str, str, dict[str, Any]]]) -> None: ...
    def traffic_ids(self, limit: int) -> list[int]: ...  # the newest `limit` traffic ids, oldest first
    def delete_traffic_through(self, last_id: int) -> int: ...  # traffic entries with id <= last_id
    def max_id(self) -> int: ...  # 0 when empty
    def query(self, where: AuditFilter, limit: int) -> list[AuditEntry]: ...  # newest first
    # admin entries (not traffic) naming `masked` in any `…keyMasked` field, newest first
    def about_key(self, masked: str, limit: int) -> list[AuditEntry]: ...
    def count(self, where: AuditFilter) -> int: ...
    def stats(self, top_actors: int) -> AuditStats: ...
    # drop entries older than the age, all but the newest `max_entries` of traffic and of the rest,
    # and all but the newest `max_auth_failures` failed authentications (counted apart from both)
    def prune(
        self, now: float, max_entries: int, max_age_seconds: float, max_auth_failures: int = AUTH_FAILURE_MAX_ENTRIES
    ) -> int: ...


def audit_log_of(store: Store) -> AuditLog:
    """The store's audit log (kept for the composition root; `store.audit` is the same thing)."""
    return store.audit
