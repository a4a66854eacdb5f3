"""Low-balance alerts a key holder sets on their own key: GET/POST/DELETE /balance/alerts.

One alert per key (the reference's shape): `lowCreditThreshold`, 0 to 1,000,000 credits. When the key's
balance is seen at or below it, `key.balance_low` is published on the bus (audit log, admin SSE,
webhooks: the gateway's and the key's own `POST /keys/webhook` destination), once; the alert is then
disarmed until the balance is seen above the threshold again, so it fires once per crossing, never once
per call. Setting an alert arms it: a key already at or below the threshold is told on the next check.

Checked off the hot path: a deferred subscriber of the bus looks at the keys its batch of `gate.allow` /
`gate.deny` events names (one dict lookup each: nothing for keys without an alert), and a ticker every
SWEEP_EVERY seconds looks at every alert (balance moves without calls: transfers, top-ups, reservations).
Alerts are store documents (kind `balance_alert`, id = the key's hash), mirrored in memory; they follow a
rotated key and are re-read after a backup restore. A document is written only when an alert is set,
removed, fires or re-arms.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from paygate.billing.usage import client_record
from paygate.core.documents import sort_number
from paygate.core.domain_errors import Invalid
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.credentials.resolver import Credentials
from paygate.events.hub import Event, EventHub
from paygate.store.base import Store

log = logging.getLogger("paygate.alerts")

KIND = "balance_alert"
MAX_THRESHOLD = 1_000_000  # the reference's range: 0-1000000
DOC_FIELDS = frozenset({"lowCreditThreshold", "createdAt", "lastTriggeredAt", "armed"})
GATE_EVENTS = frozenset({"gate.allow", "gate.deny"})
SWEEP_EVERY = 5.0


@dataclass(slots=True)
class BalanceAlert:
    threshold: int
    created_at: float
    last_triggered_at: float | None = None
    armed: bool = True

    def doc(self) -> dict[str, Any]:
        return {
            "lowCreditThreshold": self.threshold,
            "createdAt": self.created_at,
            "lastTriggeredAt": self.last_triggered_at,
            "armed": self.armed,
        }

    def view(self) -> dict[str, Any]:
        return {
            "lowCreditThreshold": self.threshold,
            "webhookUrl": None,
            "enabled": True,
            "createdAt": iso_time(self.created_at),
            "lastTriggeredAt": iso_time(self.last_triggered_at),
        }


def balance_alert_doc_problem(doc_id: str, doc: dict[str, Any]) -> str | None:
    """Why a stored (or restored) alert document could not be used, or None."""
    if len(doc_id) != 64 or any(c not in "0123456789abcdef" for c in doc_id):
        return "the id must be the key's SHA-256 (64 lowercase hex characters)"
    extra = sorted(set(doc) - DOC_FIELDS)
    if extra:
        return f"{extra[0]}: not a field of a balance alert"
    threshold = doc.get("lowCreditThreshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= MAX_THRESHOLD:
        return f"lowCreditThreshold: must be a whole number from 0 to {MAX_THRESHOLD}"
    if not isinstance(doc.get("armed"), bool):
        return "armed: must be true or false"
    for name in ("createdAt", "lastTriggeredAt"):
        value = doc.get(name)
        if (value is not None or name == "createdAt") and not math.isfinite(sort_number(value)):
            return f"{name}: must be a time in epoch seconds"
    return None


def _from_doc(doc: dict[str, Any]) -> BalanceAlert:
    last = doc.get("lastTriggeredAt")
    return BalanceAlert(
        int(doc["lowCreditThreshold"]), float(doc["createdAt"]), None if last is None else float(last), doc["armed"]
    )


class BalanceAlerts:
    def __init__(
        self,
        store: Store,
        events: EventHub,
        *,
        clock: Callable[[], float] = time.time,
        credentials: Credentials | None = None,
    ) -> None:
        self.store = store
        self.credentials = credentials  # OAuth access tokens stand for their key (billing/usage.py)
        self.events = events
        self.clock = clock
        self.alerts: dict[str, BalanceAlert] = {}  # key hash -> its alert
        self._last_sweep = 0.0
        self.reload()

    def reload(self) -> None:
        """The stored alerts (at start and after a backup restore); a malformed one is left out, logged."""
        alerts: dict[str, BalanceAlert] = {}
        for key_hash, doc in self.store.doc_items(KIND):
            problem = balance_alert_doc_problem(key_hash, doc)
            if problem:
                log.warning("ignoring a malformed balance alert document: %s", problem)
                continue
            alerts[key_hash] = _from_doc(doc)
        self.alerts = alerts

    # --- the key holder's API ---------------------------------------------------------------------
    def key_of(self, raw: str | None) -> KeyRecord:
        """The live key a client presents, or `Unauthenticated` (a 401)."""
        return client_record(self.store, raw, self.credentials)

    def view(self, raw: str | None) -> dict[str, Any]:
        record = self.key_of(raw)
        alert = self.alerts.get(record.key_hash)
        return {
            "configured": alert is not None,
            "alert": alert.view() if alert is not None else None,
            "currentCredits": record.credits,
        }

    def set(self, raw: str | None, threshold: int) -> dict[str, Any]:
        """Set (or replace) the key's alert, armed; a bad threshold is `Invalid` and changes nothing."""
        record = self.key_of(raw)
        if isinstance(threshold, bool) or not 0 <= threshold <= MAX_THRESHOLD:
            raise Invalid(f"lowCreditThreshold must be 0-{MAX_THRESHOLD}")
        alert = BalanceAlert(threshold, self.clock())
        self.store.doc_put(KIND, record.key_hash, alert.doc())
        self.alerts[record.key_hash] = alert
        return {"configured": True, "alert": alert.view()}

    def remove(self, raw: str | None) -> bool:
        """Remove the key's alert; False when it had none."""
        record = self.key_of(raw)
        if self.alerts.pop(record.key_hash, None) is None:
            return False
        self.store.doc_delete(KIND, record.key_hash)
        return True

    # --- checking -----------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Inline subscriber: a restore may have replaced the stored alerts."""
        if event.type == "backup.restored":
            self.reload()

    def on_batch(self, batch: Sequence[Event]) -> None:
        """Deferred subscriber: check the keys the batch's tool calls name (keys without an alert cost a lookup)."""
        if not self.alerts:
            return
        now = self.clock()
        seen: set[str] = set()
        for event in batch:
            h = event.key_hash
            if h is not None and h in self.alerts and h not in seen and event.type in GATE_EVENTS:
                seen.add(h)
                self.check(h, now)

    def tick(self, now: float) -> None:
        """Ticker (every second): every alert at most every SWEEP_EVERY seconds."""
        if now - self._last_sweep >= SWEEP_EVERY:
            self._last_sweep = now
            for key_hash in list(self.alerts):
                self.check(key_hash, now)

    def check(self, key_hash: str, now: float) -> bool:
        """Fire the key's alert if its balance is at or below the threshold and the alert is armed; re-arm
        it once the balance is above. True when it fired."""
        alert = self.alerts.get(key_hash)
        record = self.store.get_key(key_hash)
        if alert is None or record is None or not record.active:
            return False
        low = record.credits <= alert.threshold
        if low == alert.armed:  # low and armed: fire; above and disarmed: re-arm
            alert.armed = not low
            if low:
                alert.last_triggered_at = now
            self.store.doc_put(KIND, key_hash, alert.doc())
            if low:
                self.events.emit(
                    "key.balance_low",
                    "system",
                    {
                        "keyMasked": record.masked,
                        "name": record.name,
                        "credits": record.credits,
                        "lowCreditThreshold": alert.threshold,
                    },
                    key_hash=key_hash,  # routes it to the key's own webhook; never written out
                    timestamp=now,
                )
                return True
        return False

    def on_rekey(self, old_hash: str, new_hash: str) -> None:
        """A rotated key's alert follows it."""
        alert = self.alerts.pop(old_hash, None)
        if alert is None:
            return
        self.store.doc_put(KIND, new_hash, alert.doc())
        self.store.doc_delete(KIND, old_hash)
        self.alerts[new_hash] = alert

    def pending(self) -> int:
        """Alerts whose balance is at or below their threshold (fired, not yet re-armed): for /metrics."""
        return sum(1 for a in self.alerts.values() if not a.armed)
