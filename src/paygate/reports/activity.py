"""A key's activity timeline: its admin events, credit movements and tool calls, newest first.

Sources:
- admin events from the durable audit log (store/audit_log.py), matched by the masked key in any
  `…keyMasked` field: the newest PER_KEY, across restarts, within the audit retention;
- the durable credit ledger (every credit movement except per-call charges, which the usage log shows);
- the durable usage log (every tool call, allowed or denied).
"""

from __future__ import annotations

from typing import Any

from paygate.audit.service import AuditService
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.events.hub import Event
from paygate.reports.keys import KeyReports, ledger_type

PER_KEY = 200  # newest admin events read per key (the activity report shows at most 200 items)
CALL_KINDS = frozenset({"charge"})  # ledger lines that duplicate a usage event


class ActivityLog:
    """A key's admin events, read from the audit log (every published event is recorded there). Its
    tool calls come from the usage log, so the audit log's gate events are left out (AuditLog.about_key)."""

    def __init__(self, audit: AuditService) -> None:
        self._audit = audit

    def of(self, masked: str) -> list[Event]:
        """Oldest first."""
        return [Event(e.type, e.actor, e.data, e.timestamp) for e in reversed(self._audit.about_key(masked, PER_KEY))]


def timeline(
    reports: KeyReports, log: ActivityLog, record: KeyRecord, since: float | None, limit: int
) -> dict[str, Any]:
    items: list[tuple[float, dict[str, Any]]] = []
    for ev in log.of(record.masked):
        items.append(
            (
                ev.timestamp,
                {
                    "source": "audit",
                    "type": ev.type,
                    "actor": ev.actor,
                    "message": _audit_message(ev),
                    "metadata": ev.data,
                },
            )
        )
    for entry in reports.store.ledger(record.key_hash):
        if entry.kind in CALL_KINDS:
            continue
        kind = ledger_type(entry)
        items.append(
            (
                entry.timestamp,
                {
                    "source": "ledger",
                    "type": f"credits.{kind}",
                    "message": f"Credits {kind}: {entry.delta:+d} (balance {entry.balance_after})",
                    "metadata": {"amount": entry.delta, "balanceAfter": entry.balance_after, "memo": entry.memo},
                },
            )
        )
    for e in reports.events(record, since):
        verb = f"Called {e.tool} ({e.credits} credits)" if e.allowed else f"Denied {e.tool}: {e.deny_reason}"
        items.append(
            (
                e.timestamp,
                {
                    "source": "usage",
                    "type": "tool.call" if e.allowed else "tool.denied",
                    "message": verb,
                    "metadata": {
                        "tool": e.tool,
                        "creditsCharged": e.credits,
                        "allowed": e.allowed,
                        "denyReason": e.deny_reason,
                        "requestId": e.request_id,
                    },
                },
            )
        )
    items = [i for i in items if since is None or i[0] >= since]
    items.sort(key=lambda i: i[0], reverse=True)
    return {
        **reports.identity(record),
        "total": len(items),
        "limit": limit,
        "events": [{"timestamp": iso_time(ts), **body} for ts, body in items[:limit]],
    }


def _audit_message(ev: Event) -> str:
    name = ev.data.get("name")
    words = ev.type.replace(".", " ").replace("_", " ")
    return f"{words[0].upper()}{words[1:]}" + (f": {name}" if isinstance(name, str) else "")
