"""The audit trail: every event published on the hub, stored durably, with retention and exports.

`AuditService` is a deferred subscriber of the event bus (one transaction per batch of events, off
the tool-call path) and prunes from a ticker at most once a minute, or sooner when a burst of events
has gone well past the count limit. Retention follows the reference's defaults, 10,000 entries and
30 days (`auditMaxEntries`, `auditMaxAgeDays`); the count limit applies to per-call traffic
(`gate.*`) and to everything else separately; failed admin authentications (`admin.auth_failed`,
`admin.auth_throttled`), which anyone can cause, have a budget of their own
(`auditAuthFailureMaxEntries`) and never push the rest out.

Compliance export: each event type falls in one of four categories (access_control,
data_processing, config_change, security), and each framework names the control a category
evidences. The category table is explicit for the types we publish, with prefix and suffix rules
for the rest, so a new event type lands somewhere sensible without a code change here.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from paygate.core.csv_cells import csv_text
from paygate.core.values import iso_time
from paygate.events.hub import GATE_EVENTS, Event
from paygate.store.audit_log import AUTH_FAILURE_MAX_ENTRIES, AuditEntry, AuditLog
from paygate.store.audit_log import AuditFilter as AuditFilter  # what readers of the log pass in

log = logging.getLogger("paygate.audit")

MAX_ENTRIES = 10_000  # reference: "Ring buffer (default 10,000 events)"
MAX_AGE_DAYS = 30  # reference: "age-based cleanup (default 30 days)"
PRUNE_EVERY_SECONDS = 60.0
BURST_SLACK = 1_000  # non-traffic inserts since the last prune that trigger an early one
TRAFFIC_SLACK = 256  # traffic entries past the count limit before the oldest are trimmed
TOP_ACTORS = 100  # /audit/stats lists at most this many actors

CATEGORIES = ("access_control", "data_processing", "config_change", "security")

_EXACT: dict[str, str] = {
    "key.created": "access_control",
    "key.revoked": "access_control",
    "key.cloned": "access_control",
    "key.acl_updated": "access_control",
    "key.ip_updated": "access_control",
    "key.geo_updated": "access_control",
    "key.limit_updated": "access_control",
    "key.expiry_updated": "access_control",
    "key.alias_set": "access_control",
    "key.plan_assigned": "access_control",
    "key.bulk": "access_control",
    "gate.allow": "access_control",
    "session.created": "access_control",
    "session.destroyed": "access_control",
    "key.rotated": "security",
    "key.suspended": "security",
    "key.resumed": "security",
    "key.expired": "security",
    "key.expiry_warning": "security",
    "gate.deny": "security",
    "admin.auth_failed": "security",
    "admin.auth_throttled": "security",
    "admin.forbidden": "security",
    "oauth.token_revoked": "security",
    "backup.restored": "security",
    "key.topup": "data_processing",
    "key.credits_transferred": "data_processing",
    "key.auto_topped_up": "data_processing",
    "key.note_added": "data_processing",
    "key.note_deleted": "data_processing",
    "keys.exported": "data_processing",
    "keys.imported": "data_processing",
    "backup.exported": "data_processing",
    "config.export": "data_processing",
    "billing.refund": "data_processing",
    "schedule.executed": "data_processing",
    "key.quota_updated": "config_change",
    "key.tags_updated": "config_change",
    "key.auto_topup_configured": "config_change",
    "admin.alerts_configured": "config_change",
    "tenant.suspended": "access_control",  # refuses (or lets again) every key of the tenant
    "tenant.activated": "access_control",
}
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("admin_key.", "security"),
    ("ip_access.", "security"),
    ("approval.", "access_control"),
    ("signing.", "security"),
    ("admin.", "security"),
    ("alert.", "security"),
    ("oauth.", "access_control"),
    ("session.", "access_control"),
    ("gate.", "access_control"),
    ("credits.", "data_processing"),
    ("billing.", "data_processing"),
    ("usage.", "data_processing"),
)
_KEY_MEMBERSHIP = ("key_assigned", "key_removed")  # team.key_assigned, group.key_removed…

# What each category evidences, per framework.
FRAMEWORKS: dict[str, dict[str, Any]] = {
    "soc2": {
        "name": "SOC 2",
        "controls": {
            "access_control": "CC6.1 Logical access",
            "data_processing": "PI1.4 Processing integrity",
            "config_change": "CC8.1 Change management",
            "security": "CC7.2 Security monitoring",
        },
    },
    "gdpr": {
        "name": "GDPR",
        "controls": {
            "access_control": "Art. 25 Data protection by design",
            "data_processing": "Art. 30 Records of processing",
            "config_change": "Art. 24 Controller responsibility",
            "security": "Art. 32 Security of processing",
        },
    },
    "hipaa": {
        "name": "HIPAA",
        "controls": {
            "access_control": "164.312(a)(1) Access control",
            "data_processing": "164.312(b) Audit controls",
            "config_change": "164.308(a)(1) Security management",
            "security": "164.308(a)(6) Incident procedures",
        },
    },
}

AUDIT_COLUMNS = ("id", "timestamp", "type", "actor", "message", "metadata")
COMPLIANCE_COLUMNS = ("id", "timestamp", "type", "actor", "category", "control", "message", "metadata")


def category_of(type_: str) -> str:
    if type_ in _EXACT:
        return _EXACT[type_]
    for prefix, category in _PREFIXES:
        if type_.startswith(prefix):
            return category
    if type_.endswith(_KEY_MEMBERSHIP):
        return "access_control"
    # Anything else an admin does to the gateway's setup (teams, groups, plans, templates, webhooks,
    # maintenance, schedules…) is a configuration change.
    return "config_change"


def message_of(type_: str, data: dict[str, Any]) -> str:
    """A one-line summary: the type in words, plus what it was about when the event names it."""
    if type_ == "gate.allow":
        return f"Allowed: {data.get('tool')}"
    if type_ == "gate.deny":
        return f"Denied: {data.get('tool')} ({data.get('reason')})"
    words = type_.replace(".", " ").replace("_", " ")
    subject = next(
        (
            data[f]
            for f in ("name", "keyMasked", "plan", "teamId", "groupId", "id")
            if isinstance(data.get(f), str | int) and not isinstance(data.get(f), bool)
        ),
        None,
    )
    return f"{words[:1].upper()}{words[1:]}" + (f": {subject}" if subject is not None else "")


def entry_json(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "timestamp": iso_time(e.timestamp),
        "type": e.type,
        "actor": e.actor,
        "message": message_of(e.type, e.data),
        "metadata": e.data,
    }


def event_json(event: Event) -> dict[str, Any]:
    """A published event as the audit entry it becomes (the admin event stream sends it before it is stored)."""
    return entry_json(AuditEntry(event.id, event.timestamp, event.type, event.actor, event.data))


def compliance_json(e: AuditEntry, framework: str) -> dict[str, Any]:
    category = category_of(e.type)
    return {**entry_json(e), "category": category, "control": FRAMEWORKS[framework]["controls"][category]}


def to_csv(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """Rows as CSV, metadata as JSON text; every cell made safe for spreadsheets (core/csv_cells.py)."""
    flat = ({**row, "metadata": orjson.dumps(row.get("metadata", {}), default=str).decode()} for row in rows)
    return csv_text(columns, ([row.get(c) for c in columns] for row in flat))


class AuditService:
    def __init__(
        self,
        log_: AuditLog,
        *,
        max_entries: int = MAX_ENTRIES,
        max_age_days: float = MAX_AGE_DAYS,
        prune_every: float = PRUNE_EVERY_SECONDS,
        clock: Callable[[], float] = time.time,
        before_read: Callable[[], None] = lambda: None,
        gate_events: bool = True,
        max_auth_failures: int = AUTH_FAILURE_MAX_ENTRIES,
    ) -> None:
        self.log = log_
        self.max_auth_failures = max_auth_failures
        self.gate_events = gate_events
        self._before_read = before_read  # the bus's flush: a reader sees every event published before it
        self.max_entries = max_entries
        self.max_age_days = max_age_days
        self.prune_every = prune_every
        self._last_prune = float("-inf")
        self._since_prune = 0
        self._clock = clock
        # Ids of the retained traffic entries, oldest first: per-call rows are trimmed to the count limit
        # as they arrive, a few hundred at a time (a range delete), not in one large prune.
        self._traffic: deque[int] = deque(log_.traffic_ids(max_entries + TRAFFIC_SLACK))

    def record(self, event: Event) -> None:
        self.record_batch((event,))

    def record_batch(self, events: Sequence[Event]) -> None:
        if not self.gate_events:
            events = [e for e in events if e.type not in GATE_EVENTS]
            if not events:
                return
        # An event made outside the bus has id 0: let SQLite number it.
        self.log.append_many(
            [
                (e.id or None, e.timestamp, e.type, e.actor, e.data)  # type: ignore[misc]
                for e in events
            ]
        )
        traffic = [e.id for e in events if e.type in GATE_EVENTS and e.id]
        self._traffic.extend(traffic)
        if len(self._traffic) > self.max_entries + TRAFFIC_SLACK:
            last = 0
            while len(self._traffic) > self.max_entries:
                last = self._traffic.popleft()
            self.log.delete_traffic_through(last)
        self._since_prune += len(events) - len(traffic)
        if self._since_prune > BURST_SLACK:
            self.tick(self._clock())

    def tick(self, now: float) -> None:
        """Enforce retention; cheap when called every second (runs at most once per `prune_every`,
        unless a burst of events is well past the count limit)."""
        if now - self._last_prune < self.prune_every and self._since_prune <= BURST_SLACK:
            return
        self._last_prune = now
        self._since_prune = 0
        removed = self.log.prune(now, self.max_entries, self.max_age_days * 86_400, self.max_auth_failures)
        if removed:
            log.info("audit retention removed %d entries", removed)
            self._traffic = deque(self.log.traffic_ids(self.max_entries + TRAFFIC_SLACK))

    def retention(self) -> dict[str, Any]:
        return {
            "maxEntries": self.max_entries,
            "maxAgeDays": self.max_age_days,
            "authFailureMaxEntries": self.max_auth_failures,
            "pruneIntervalSeconds": self.prune_every,
        }

    def stats(self) -> dict[str, Any]:
        self._before_read()
        s = self.log.stats(TOP_ACTORS)
        by_category: Counter[str] = Counter()
        for type_, n in s.by_type.items():
            by_category[category_of(type_)] += n
        return {
            "totalEvents": s.total,
            "byType": s.by_type,
            "byActor": s.by_actor,
            "byCategory": {c: by_category.get(c, 0) for c in CATEGORIES},
            "oldestEvent": iso_time(s.oldest),
            "newestEvent": iso_time(s.newest),
            "retention": self.retention(),
        }

    def entries(self, where: AuditFilter, limit: int) -> list[AuditEntry]:
        self._before_read()
        return self.log.query(where, limit)

    def count(self, where: AuditFilter) -> int:
        self._before_read()
        return self.log.count(where)

    def about_key(self, masked: str, limit: int) -> list[AuditEntry]:
        self._before_read()
        return self.log.about_key(masked, limit)
