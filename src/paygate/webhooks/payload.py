"""Events as webhook receivers see them, and the batch body.

A delivery's body is `{"events": [usage events], "adminEvents": [admin events]}`; both arrays are
always present (one may be empty). Per-call gate events become usage events:

    {"id", "timestamp", "apiKey" (masked), "keyName", "tool", "creditsCharged", "allowed",
     "denyReason", "requestId", "durationMs"}

Everything else is an admin event: `{"id", "type", "timestamp", "actor", "metadata"}` (+ `requestId`).
Keys appear masked only (first 7 + last 4 characters); the key hash an event carries for routing is
never written out. Each event is serialised once, when it is queued; a batch body is those texts
joined, so retries send the very same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from paygate.core.values import iso_time
from paygate.events.hub import GATE_EVENTS, Event

USAGE = "usage"  # the kind (and the filter/log type name) of per-call events
ADMIN = "admin"
KEY_FIELDS = ("keyMasked", "newKeyMasked", "oldKeyMasked")


def kind_of(event: Event) -> str:
    return USAGE if event.type in GATE_EVENTS else ADMIN


def usage_event(event: Event, key_name: str | None) -> dict[str, Any]:
    data = event.data
    allowed = event.type == "gate.allow"
    out: dict[str, Any] = {
        "id": event.id,
        "timestamp": iso_time(event.timestamp),
        "apiKey": data.get("keyMasked"),
        "keyName": key_name,
        "tool": data.get("tool"),
        "creditsCharged": int(data.get("credits") or 0) if allowed else 0,
        "allowed": allowed,
        "denyReason": None if allowed else data.get("reason"),
        "requestId": event.request_id or data.get("requestId"),
        "durationMs": data.get("durationMs"),
    }
    if data.get("shadow"):
        out["shadow"] = data["shadow"]
    if data.get("refunded"):
        out["refunded"] = data["refunded"]
    return out


def admin_event(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "timestamp": iso_time(event.timestamp),
        "actor": event.actor,
        "metadata": event.data,
    }
    if event.request_id is not None:
        out["requestId"] = event.request_id
    return out


def shape(event: Event, key_name: str | None = None) -> tuple[str, str]:
    """`(kind, JSON text)` of an event as it is queued."""
    kind = kind_of(event)
    body = usage_event(event, key_name) if kind == USAGE else admin_event(event)
    # default=str: an unexpected value type in an event's data is sent as text rather than lost.
    return kind, orjson.dumps(body, default=str).decode()


def masked_keys(event: Event) -> list[str]:
    """The masked keys an event is about (keyMasked, newKeyMasked, oldKeyMasked), in that order."""
    return [v for f in KEY_FIELDS if isinstance(v := event.data.get(f), str) and v]


def key_prefix(masked: str | None) -> str | None:
    """The kept prefix of a masked key (`pg_abc1…9f3e` → `pg_abc1`)."""
    if not masked:
        return None
    head, sep, _ = masked.partition("…")
    return head if sep else None


def batch_body(items: Sequence[tuple[str, str]]) -> bytes:
    """The POST body for `(kind, JSON text)` items, in order within each array."""
    usage = ",".join(text for kind, text in items if kind == USAGE)
    admin = ",".join(text for kind, text in items if kind != USAGE)
    return f'{{"events":[{usage}],"adminEvents":[{admin}]}}'.encode()


def test_body(message: str, actor: str, now: float) -> bytes:
    """The body of POST /webhooks/test: one admin event of type `webhook.test`."""
    event = {
        "id": 0,
        "type": "webhook.test",
        "timestamp": iso_time(now),
        "actor": actor,
        "metadata": {"message": message, "test": True},
    }
    return orjson.dumps({"events": [], "adminEvents": [event]})
