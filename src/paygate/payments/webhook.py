"""POST /stripe/webhook's service: the signature checked with the official `stripe` package (HMAC-SHA256
over `t.payload`, constant-time, 5-minute tolerance), then the event handed to the ledger.

Nothing is read from an event before its signature is good, and a bad or missing signature changes
nothing (400). Unknown event types are acknowledged and ignored, as Stripe expects of an endpoint
subscribed to more than it handles.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe

from paygate.core.domain_errors import Invalid
from paygate.payments.stripe_events import CREDIT_EVENTS, TAKE_BACK_EVENTS, read_payment, read_take_back
from paygate.payments.stripe_ledger import Outcome, StripeLedger

log = logging.getLogger("paygate.payments")

TOLERANCE_SECONDS = 300  # Stripe's recommendation, and the reference's


class SignatureInvalid(Invalid):
    """A missing, malformed, wrong or stale Stripe-Signature: 400, nothing read or changed."""


class StripeWebhook:
    def __init__(self, ledger: StripeLedger, signing_secret: str) -> None:
        self.ledger = ledger
        self._secret = signing_secret

    def handle(self, body: bytes, signature: str | None) -> dict[str, Any]:
        event = self.verified(body, signature)
        event_type = event.get("type")
        if not isinstance(event.get("id"), str) or not isinstance(event_type, str):
            raise Invalid("Malformed Stripe event")
        data = event.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
            raise Invalid("Malformed Stripe event")
        outcome = self._dispatch(event, event_type)
        log.info("stripe: %s %s: %s", event_type, event["id"], outcome.action)
        return {"received": True, "event": event_type, "action": outcome.action, **outcome.data}

    def verified(self, body: bytes, signature: str | None) -> dict[str, Any]:
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SignatureInvalid("Invalid Stripe webhook body") from exc
        try:
            event = stripe.Webhook.construct_event(payload, signature, self._secret, TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as exc:
            raise SignatureInvalid("Invalid Stripe signature") from exc
        except ValueError as exc:  # not JSON, or not an event
            raise SignatureInvalid("Invalid Stripe webhook body") from exc
        values: dict[str, Any] = event.to_dict()
        return values

    def _dispatch(self, event: dict[str, Any], event_type: str) -> Outcome:
        if event_type in CREDIT_EVENTS:
            payment = read_payment(event)
            if payment is None:
                return Outcome("ignored", {"reason": "not a paid PayGate purchase"})
            return self.ledger.credit(payment)
        if event_type in TAKE_BACK_EVENTS:
            take_back = read_take_back(event)
            assert take_back is not None
            return self.ledger.take_back(take_back)
        return Outcome("ignored", {"reason": "event type not handled"})
