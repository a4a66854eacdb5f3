"""The request log: the newest tool calls (one `gate.allow` or `gate.deny` event each) in memory.

A ring buffer of `requestLogSize` entries (default 5,000; 0 turns it off) fed by a deferred
subscriber of the event bus, so a tool call never waits for it. At start it is refilled from the
durable audit log's newest gate events, so it survives a restart as far as the audit log's traffic
retention reaches. Readers flush the bus first: they see every call answered before them.
Entries carry keys masked, as the events do; an entry's `id` is its event's id (and audit entry's).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from paygate.core.values import iso_time
from paygate.events.hub import GATE_EVENTS, Event
from paygate.store.audit_log import AuditEntry

GATE_TYPES = tuple(sorted(GATE_EVENTS))  # gate.allow, gate.deny
REQUEST_COLUMNS = ("id", "timestamp", "tool", "key", "status", "credits", "durationMs", "denyReason", "requestId")
Status = Literal["allowed", "denied"]


@dataclass(frozen=True, slots=True)
class RequestEntry:
    id: int
    timestamp: float
    tool: str
    key: str | None  # masked; None when the caller gave no valid key
    allowed: bool
    credits: int  # net of refund and surcharge; 0 when denied
    duration_ms: float
    deny_reason: str | None
    request_id: str | None

    @property
    def status(self) -> Status:
        return "allowed" if self.allowed else "denied"

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "timestamp": iso_time(self.timestamp),
            "tool": self.tool,
            "key": self.key,
            "status": self.status,
            "credits": self.credits,
            "durationMs": self.duration_ms,
        }
        if self.deny_reason is not None:
            out["denyReason"] = self.deny_reason
        out["requestId"] = self.request_id
        return out


def entry_of(id_: int, timestamp: float, type_: str, data: dict[str, Any]) -> RequestEntry | None:
    """The request-log entry of a gate event (live or read back from the audit log), else None."""
    if type_ not in GATE_TYPES:
        return None
    allowed = type_ == "gate.allow"
    key = data.get("keyMasked")
    request_id = data.get("requestId")
    return RequestEntry(
        id_,
        timestamp,
        str(data.get("tool", "")),
        key if isinstance(key, str) else None,
        allowed,
        _int(data.get("credits")) if allowed else 0,
        _float(data.get("durationMs")),
        None if allowed else str(data.get("reason", "")),
        request_id if isinstance(request_id, str) else None,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """Which entries a read covers. `key` is a substring of the masked key (`...` matches `…`);
    `since`/`until` are inclusive Unix times."""

    key: str | None = None
    tool: str | None = None
    status: Status | None = None
    since: float | None = None
    until: float | None = None

    def matches(self, e: RequestEntry) -> bool:
        if self.tool is not None and e.tool != self.tool:
            return False
        if self.status is not None and e.status != self.status:
            return False
        if self.since is not None and e.timestamp < self.since:
            return False
        if self.until is not None and e.timestamp > self.until:
            return False
        if self.key is not None:
            # Masked keys are shown with "…"; people often type three dots instead.
            return e.key is not None and self.key.replace("...", "…") in e.key
        return True


def summary(entries: Sequence[RequestEntry]) -> dict[str, Any]:
    allowed = sum(1 for e in entries if e.allowed)
    return {
        "totalAllowed": allowed,
        "totalDenied": len(entries) - allowed,
        "totalCredits": sum(e.credits for e in entries),
        "avgDurationMs": average_ms(entries),
    }


def average_ms(entries: Sequence[RequestEntry]) -> float:
    return round(sum(e.duration_ms for e in entries) / len(entries), 3) if entries else 0


class RequestLog:
    """The ring holds the gate events themselves (and audit entries after a refill); they become
    `RequestEntry`s when read, so the bus's delivery does one type check per event, not a conversion."""

    def __init__(self, size: int, before_read: Callable[[], None] = lambda: None) -> None:
        self.size = size
        self._ring: deque[Event | AuditEntry] = deque(maxlen=size)
        self._before_read = before_read  # the bus's flush

    def __len__(self) -> int:
        return len(self._ring)

    def load(self, stored: Iterable[AuditEntry]) -> None:
        """Append audit entries of gate events given oldest first (the start-up refill)."""
        self._ring.extend(a for a in stored if a.type in GATE_TYPES)

    def record_batch(self, events: Sequence[Event]) -> None:
        self._ring.extend(e for e in events if e.type in GATE_TYPES)

    def newest_first(self) -> Iterator[RequestEntry]:
        self._before_read()
        for item in reversed(self._ring):
            entry = entry_of(item.id, item.timestamp, item.type, item.data)
            if entry is not None:
                yield entry

    def select(self, where: RequestFilter) -> list[RequestEntry]:
        """Every matching entry, newest first."""
        return [e for e in self.newest_first() if where.matches(e)]
