"""What a verified Stripe event means for the gateway, read from its JSON: a payment that credits a key,
a refund or dispute that takes credits back, or nothing (pure: no store, no I/O).

A payment names its key in the metadata the reference documents (`paygate_api_key`, `paygate_credits`)
or, in sessions this gateway creates, by the key's hash (`paygate_key_hash`): the raw key is a bearer
credential and does not belong in Stripe, where metadata is shown in the dashboard, in exports and in
every webhook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from paygate.core.domain_errors import Invalid
from paygate.core.values import MAX_CREDITS

Json = dict[str, Any]
Cause = Literal["refund", "dispute"]

KEY_FIELD = "paygate_api_key"  # the reference's: the raw key (sessions the operator creates)
HASH_FIELD = "paygate_key_hash"  # ours: the key's sha256 (sessions the gateway creates)
CREDITS_FIELD = "paygate_credits"
PACKAGE_FIELD = "paygate_package"
CREDIT_EVENTS = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded", "invoice.payment_succeeded"}
)
TAKE_BACK_EVENTS: dict[str, Cause] = {"charge.refunded": "refund", "charge.dispute.created": "dispute"}


class StripeEventInvalid(Invalid):
    """A signed event the gateway cannot act on (bad metadata): 400, so it shows in Stripe's dashboard."""


@dataclass(frozen=True, slots=True)
class KeyRef:
    raw: str | None
    key_hash: str | None


@dataclass(frozen=True, slots=True)
class Payment:
    """A paid session or invoice: `credits` for the key. `object_id` (cs_… / in_…) is what is credited once."""

    event_id: str
    event_type: str
    object_id: str
    key: KeyRef
    credits: int
    refs: dict[str, str]  # session, invoice, payment_intent, charge: the ids a refund or dispute names
    amount: int | None  # what was paid, in the currency's smallest unit
    currency: str | None
    package: str | None


@dataclass(frozen=True, slots=True)
class TakeBack:
    """A refund (cumulative `amount` refunded) or a dispute (`amount` disputed) of a charge."""

    event_id: str
    event_type: str
    cause: Cause
    object_id: str  # ch_… / dp_…
    refs: dict[str, str]  # payment_intent, charge, invoice
    amount: int
    charge_amount: int | None  # the charge's whole amount, when the event says it
    full: bool  # the charge is wholly refunded (or the dispute covers all of it)


def _id(value: Any) -> str | None:
    """An id field, which Stripe may expand into its object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _refs(obj: Json, **fields: str) -> dict[str, str]:
    return {name: got for name, field in fields.items() if (got := _id(obj.get(field))) is not None}


def _metadata(obj: Json, event_type: str) -> Json:
    """The PayGate metadata of a session or invoice; for a subscription's invoice, its subscription's."""
    own = obj.get("metadata") or {}
    if event_type.startswith("invoice.") and not (KEY_FIELD in own or HASH_FIELD in own):
        parent = (obj.get("parent") or {}).get("subscription_details") or obj.get("subscription_details") or {}
        lines = ((obj.get("lines") or {}).get("data") or [{}])[0] or {}
        own = parent.get("metadata") or lines.get("metadata") or {}
    return own if isinstance(own, dict) else {}


def _credits(text: Any) -> int:
    if not isinstance(text, str) or not text.strip().isdigit():
        raise StripeEventInvalid(f"{CREDITS_FIELD} must be a whole number of credits")
    credits = int(text.strip())
    if not 1 <= credits <= MAX_CREDITS:
        raise StripeEventInvalid(f"{CREDITS_FIELD} must be between 1 and {MAX_CREDITS}")
    return credits


def read_payment(event: Json) -> Payment | None:
    """The payment a credit event announces, or None when it credits nothing: not paid (yet), not a
    PayGate purchase, or a subscription's Checkout (its invoices credit it, once per billing cycle)."""
    obj: Json = event["data"]["object"]
    event_type = str(event["type"])
    meta = _metadata(obj, event_type)
    if not (meta.get(KEY_FIELD) or meta.get(HASH_FIELD)) or CREDITS_FIELD not in meta:
        return None
    if event_type.startswith("checkout."):
        if obj.get("payment_status") != "paid" or obj.get("mode") == "subscription":
            return None
        refs = _refs(obj, session="id", payment_intent="payment_intent", invoice="invoice")
        amount = _int(obj.get("amount_total"))
    else:
        if obj.get("paid") is False or obj.get("status") not in (None, "paid"):
            return None
        refs = _refs(obj, invoice="id", payment_intent="payment_intent", charge="charge")
        amount = _int(obj.get("amount_paid"))
    object_id = _id(obj.get("id"))
    if object_id is None:
        raise StripeEventInvalid("the event's object has no id")
    raw, key_hash = meta.get(KEY_FIELD), meta.get(HASH_FIELD)
    key = KeyRef(raw if isinstance(raw, str) and raw else None, key_hash if isinstance(key_hash, str) else None)
    package = meta.get(PACKAGE_FIELD)
    currency = obj.get("currency")
    return Payment(
        str(event["id"]),
        event_type,
        object_id,
        key,
        _credits(meta.get(CREDITS_FIELD)),
        refs,
        amount,
        currency if isinstance(currency, str) else None,
        package if isinstance(package, str) else None,
    )


def read_take_back(event: Json) -> TakeBack | None:
    event_type = str(event["type"])
    cause = TAKE_BACK_EVENTS.get(event_type)
    if cause is None:
        return None
    obj: Json = event["data"]["object"]
    object_id = _id(obj.get("id")) or ""
    if cause == "refund":
        refs = _refs(obj, charge="id", payment_intent="payment_intent", invoice="invoice")
        amount, whole = _int(obj.get("amount_refunded")) or 0, _int(obj.get("amount"))
        full = obj.get("refunded") is True or (whole is not None and amount >= whole > 0)
    else:
        refs = _refs(obj, charge="charge", payment_intent="payment_intent")
        expanded = obj.get("charge")
        charge: Json = expanded if isinstance(expanded, dict) else {}
        amount, whole = _int(obj.get("amount")) or 0, _int(charge.get("amount"))
        full = whole is not None and amount >= whole
    return TakeBack(str(event["id"]), event_type, cause, object_id, refs, amount, whole, full)
