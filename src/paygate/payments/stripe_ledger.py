"""Stripe's money moves: a paid session or invoice credits its key once; a refund or dispute takes the
credits back, up to what the key has left, and records the rest as owed.

Exactly once. Each move goes through the store's `move_once`, which records an id in the move's own
transaction: the session or invoice id for a credit (a replayed event, Stripe's retry, and a second
event announcing the same payment all find it), the event id for a take-back. The documents written
after the move (the payment, what is owed) are written again, from the move's recorded outcome, when
the same event comes back: Stripe resends any event it did not see answered with a 2xx, so a crash
between the move and its documents is repaired by the retry.

Documents (kind: id):
- `stripe_payment`: the session or invoice id, and one alias per other id (payment intent, charge,
  invoice), so a refund or dispute finds the credit it undoes; it keeps what was taken back per cause.
- `stripe_owed`: the key's hash: what take-backs could not take because the balance was spent.
- `stripe_pending`: a payment ref: take-backs that arrived before their payment (Stripe does not promise
  order), applied when the payment is credited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paygate.core.keys import hash_key
from paygate.core.records import KeyRecord
from paygate.core.values import MAX_CREDITS, iso_time
from paygate.keys.service import Publish
from paygate.payments.stripe_events import Payment, StripeEventInvalid, TakeBack
from paygate.store.base import Store

PAYMENT_DOC = "stripe_payment"
OWED_DOC = "stripe_owed"
PENDING_DOC = "stripe_pending"
DOC_KINDS = (PAYMENT_DOC, OWED_DOC, PENDING_DOC)
CREDIT_KIND = "stripe_credit"
TAKE_BACK_KINDS = {"refund": "stripe_refund", "dispute": "stripe_dispute"}
MAX_ROTATIONS = 32  # a credit follows a rotated key to its successor, at most this many hops


class StripeKeyUnknown(StripeEventInvalid):
    """The key a payment names is not here (or revoked): 400, so Stripe retries and shows it."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an event did, for the webhook's answer (never a raw key)."""

    action: str  # credited | duplicate | taken_back | pending | ignored
    data: dict[str, Any]


def _memo(event_id: str, refs: dict[str, str]) -> str:
    return " ".join(["stripe", f"event={event_id}", *(f"{name}={value}" for name, value in sorted(refs.items()))])


class StripeLedger:
    def __init__(self, store: Store, publish: Publish, clock: Any = time.time) -> None:
        self.store = store
        self.publish = publish
        self.clock = clock

    # --- credits ---------------------------------------------------------------------------------
    def key_for(self, payment: Payment) -> KeyRecord:
        """The live key a payment names; a rotated key's successor (a checkout made before a rotation)."""
        key_hash = payment.key.key_hash or (hash_key(payment.key.raw) if payment.key.raw else "")
        record = self.store.get_key(key_hash)
        for _ in range(MAX_ROTATIONS):
            if record is None or record.active or not record.extra.get("rotatedTo"):
                break
            record = self.store.get_key(str(record.extra["rotatedTo"]))
        if record is None or not record.active:
            self.publish(
                "stripe.payment_unmatched",
                "stripe",
                eventId=payment.event_id,
                eventType=payment.event_type,
                objectId=payment.object_id,
                credits=payment.credits,
                reason="unknown key" if record is None else "revoked key",
            )
            raise StripeKeyUnknown("API key not found or revoked")
        return record

    def credit(self, payment: Payment) -> Outcome:
        record = self.key_for(payment)
        if record.credits + payment.credits > MAX_CREDITS:
            raise StripeEventInvalid(f"the balance would exceed {MAX_CREDITS}")
        refs = {"session": payment.object_id} if payment.event_type.startswith("checkout.") else {}
        refs.update(payment.refs)
        memo = _memo(payment.event_id, refs)
        done = self.store.move_once(record.key_hash, payment.credits, CREDIT_KIND, memo, f"stripe:{payment.object_id}")
        if done.outcome == "no_key":  # removed between the lookup and the move
            raise StripeKeyUnknown("API key not found or revoked")
        first = done.outcome == "applied"
        self._remember_payment(record, payment, refs, done.requested)
        data = {"keyMasked": record.masked, "credits": done.requested, "balance": done.balance}
        if first:
            self.publish(
                "stripe.credits_added",
                "stripe",
                keyMasked=record.masked,
                creditsAdded=done.requested,
                newBalance=done.balance,
                eventId=payment.event_id,
                eventType=payment.event_type,
                packageId=payment.package,
                amount=payment.amount,
                currency=payment.currency,
                **refs,
            )
        self._apply_pending(payment, refs)
        return Outcome("credited" if first else "duplicate", data)

    def _remember_payment(self, record: KeyRecord, payment: Payment, refs: dict[str, str], credits: int) -> None:
        """The payment's document and its aliases (written again on a replay when a crash lost them)."""
        primary = payment.object_id
        if self.store.doc_peek(PAYMENT_DOC, primary) is None:
            self.store.doc_put(
                PAYMENT_DOC,
                primary,
                {
                    "id": primary,
                    "keyHash": record.key_hash,
                    "credits": credits,
                    "amount": payment.amount,
                    "currency": payment.currency,
                    "eventId": payment.event_id,
                    "refs": refs,
                    "reclaimed": {"refund": 0, "dispute": 0},
                    "takeBacks": {},
                    "createdAt": iso_time(self.clock()),
                },
            )
        for ref in refs.values():
            if ref != primary and self.store.doc_peek(PAYMENT_DOC, ref) is None:
                self.store.doc_put(PAYMENT_DOC, ref, {"id": ref, "primary": primary})

    def _apply_pending(self, payment: Payment, refs: dict[str, str]) -> None:
        for ref in {payment.object_id, *refs.values()}:
            pending = self.store.doc_get(PENDING_DOC, ref)
            if pending is None:
                continue
            for entry in pending.get("takeBacks", []):
                self.take_back(take_back_from_doc(entry))
            self.store.doc_delete(PENDING_DOC, ref)

    # --- take-backs ------------------------------------------------------------------------------
    def payment_of(self, refs: dict[str, str]) -> dict[str, Any] | None:
        for ref in refs.values():
            doc = self.store.doc_get(PAYMENT_DOC, ref)
            if doc is not None and "primary" in doc:
                doc = self.store.doc_get(PAYMENT_DOC, str(doc["primary"]))
            if doc is not None:
                return doc
        return None

    def take_back(self, event: TakeBack) -> Outcome:
        payment = self.payment_of(event.refs)
        if payment is None:
            return self._keep_pending(event)
        key_hash = str(payment["keyHash"])
        requested = self._requested(payment, event)
        kind = TAKE_BACK_KINDS[event.cause]
        refs = {**payment.get("refs", {}), **event.refs}
        if event.cause == "dispute":
            refs["dispute"] = event.object_id
        memo = _memo(event.event_id, refs)
        done = self.store.move_once(key_hash, -requested, kind, memo, f"stripe:{event.event_id}")
        if done.outcome == "no_key":
            return Outcome("ignored", {"reason": "the credited key no longer exists"})
        requested, taken, short = -done.requested, -done.moved, done.short
        record = self.store.get_key(key_hash)
        masked = record.masked if record is not None else "?"
        if event.event_id not in payment.get("takeBacks", {}):
            payment.setdefault("takeBacks", {})[event.event_id] = requested
            reclaimed = payment.setdefault("reclaimed", {"refund": 0, "dispute": 0})
            reclaimed[event.cause] = int(reclaimed.get(event.cause, 0)) + requested
            self.store.doc_put(PAYMENT_DOC, str(payment["id"]), payment)
        if short:
            self._owe(key_hash, event, requested, taken, short, str(payment["id"]))
        data = {"keyMasked": masked, "requested": requested, "taken": taken, "owed": short, "balance": done.balance}
        if done.outcome == "applied" and requested:
            self.publish(
                "stripe.credits_reclaimed",
                "stripe",
                keyMasked=masked,
                cause=event.cause,
                creditsRequested=requested,
                creditsTaken=taken,
                creditsOwed=short,
                newBalance=done.balance,
                eventId=event.event_id,
                eventType=event.event_type,
                payment=payment["id"],
                **{k: v for k, v in refs.items() if k != "session"},
            )
            if short:
                self.publish(
                    "stripe.credits_owed",
                    "stripe",
                    keyMasked=masked,
                    cause=event.cause,
                    creditsOwed=short,
                    totalOwed=self.owed(key_hash),
                    eventId=event.event_id,
                    payment=payment["id"],
                )
        return Outcome("taken_back" if done.outcome == "applied" else "duplicate", data)

    @staticmethod
    def _requested(payment: dict[str, Any], event: TakeBack) -> int:
        """Credits this event takes back: its share of the payment's credits (the refunded or disputed part
        of what was paid, rounded down; all of them when the whole charge is), less what this cause has
        already taken, and never more than is left of the payment."""
        credits = int(payment["credits"])
        whole = event.charge_amount or payment.get("amount") or 0
        if event.full or (whole and event.amount >= whole):
            target = credits
        elif whole:
            target = credits * event.amount // whole
        else:
            target = 0
        reclaimed = payment.get("reclaimed", {})
        already = int(reclaimed.get(event.cause, 0))
        left = credits - sum(int(v) for v in reclaimed.values())
        return max(0, min(target - already, left))

    def _owe(self, key_hash: str, event: TakeBack, requested: int, taken: int, short: int, payment: str) -> None:
        doc = self.store.doc_get(OWED_DOC, key_hash) or {"keyHash": key_hash, "owed": 0, "entries": []}
        if any(e.get("eventId") == event.event_id for e in doc["entries"]):
            return
        doc["entries"].append(
            {
                "eventId": event.event_id,
                "cause": event.cause,
                "payment": payment,
                "requested": requested,
                "taken": taken,
                "owed": short,
                "at": iso_time(self.clock()),
            }
        )
        doc["owed"] = int(doc["owed"]) + short
        self.store.doc_put(OWED_DOC, key_hash, doc)

    def _keep_pending(self, event: TakeBack) -> Outcome:
        """A take-back of a payment not credited (yet): kept under each of its refs until it is."""
        entry = take_back_doc(event)
        for ref in event.refs.values():
            doc = self.store.doc_get(PENDING_DOC, ref) or {"ref": ref, "takeBacks": []}
            if all(e["eventId"] != event.event_id for e in doc["takeBacks"]):
                doc["takeBacks"].append(entry)
                self.store.doc_put(PENDING_DOC, ref, doc)
        self.publish(
            "stripe.takeback_pending",
            "stripe",
            cause=event.cause,
            eventId=event.event_id,
            eventType=event.event_type,
            amount=event.amount,
            **event.refs,
        )
        return Outcome("pending", {"reason": "no credited payment matches yet"})

    # --- reads -----------------------------------------------------------------------------------
    def owed(self, key_hash: str) -> int:
        doc = self.store.doc_peek(OWED_DOC, key_hash)
        return int(doc["owed"]) if doc else 0

    def owed_list(self) -> list[dict[str, Any]]:
        out = []
        for doc in self.store.doc_list(OWED_DOC):
            record = self.store.get_key(str(doc["keyHash"]))
            out.append(
                {
                    "keyMasked": record.masked if record else None,
                    "keyName": record.name if record else None,
                    "balance": record.credits if record else 0,
                    "owed": doc["owed"],
                    "entries": doc["entries"],
                }
            )
        return sorted(out, key=lambda d: -int(d["owed"]))


def take_back_doc(event: TakeBack) -> dict[str, Any]:
    return {
        "eventId": event.event_id,
        "eventType": event.event_type,
        "cause": event.cause,
        "objectId": event.object_id,
        "refs": event.refs,
        "amount": event.amount,
        "chargeAmount": event.charge_amount,
        "full": event.full,
    }


def take_back_from_doc(doc: dict[str, Any]) -> TakeBack:
    return TakeBack(
        str(doc["eventId"]),
        str(doc["eventType"]),
        "dispute" if doc["cause"] == "dispute" else "refund",
        str(doc["objectId"]),
        {str(k): str(v) for k, v in dict(doc["refs"]).items()},
        int(doc["amount"]),
        None if doc.get("chargeAmount") is None else int(doc["chargeAmount"]),
        bool(doc.get("full")),
    )


def _ints(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, int) and v >= 0 for v in value.values())


def stripe_doc_problem(kind: str, doc_id: str, doc: dict[str, Any]) -> str | None:
    """What a restore checks of this module's documents (compose/doc_checks.py): the shapes written here."""
    if kind == PAYMENT_DOC:
        if doc.get("id") != doc_id:
            return "id: must equal the document id"
        if "primary" in doc:
            alias = isinstance(doc["primary"], str) and set(doc) == {"id", "primary"}
            return None if alias else "primary: a payment id"
        if not isinstance(doc.get("keyHash"), str) or not isinstance(doc.get("credits"), int) or doc["credits"] < 1:
            return "keyHash, credits: required"
        if not (_ints(doc.get("reclaimed")) and _ints(doc.get("takeBacks"))):
            return "reclaimed, takeBacks: objects of whole numbers"
        return None
    if kind == OWED_DOC:
        if doc.get("keyHash") != doc_id:
            return "keyHash: must equal the document id"
        owed, entries = doc.get("owed"), doc.get("entries")
        if not isinstance(owed, int) or owed < 0 or not isinstance(entries, list):
            return "owed, entries: required"
        return None if all(isinstance(e, dict) and isinstance(e.get("eventId"), str) for e in entries) else "entries"
    if kind == PENDING_DOC:
        if doc.get("ref") != doc_id or not isinstance(doc.get("takeBacks"), list):
            return "ref, takeBacks: required"
        try:
            for entry in doc["takeBacks"]:
                take_back_from_doc(entry)
        except (KeyError, TypeError, ValueError):
            return "takeBacks: not take-backs"
        return None
    return f"{kind}: not a payments document"


def doc_check(kind: str) -> Callable[[str, dict[str, Any]], str | None]:
    def check(doc_id: str, doc: dict[str, Any]) -> str | None:
        return stripe_doc_problem(kind, doc_id, doc)

    return check
