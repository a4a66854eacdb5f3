"""Stripe in tests: events built as Stripe sends them, signed with the official package's own helper
(`WebhookSignature.generate_signature_header`: `t=…,v1=HMAC-SHA256(secret, "t.payload")`), and a stand-in
for the Stripe API on 127.0.0.1 that answers the one endpoint the gateway calls (Checkout Session create),
reached through the package's base-URL setting (`stripe.apiBase`). The stand-in is the only thing not
real here: this machine cannot reach Stripe (docs/payments.md says how to run against test mode)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import stripe

SECRET = "whsec_test_paygate_signing_secret"
_ids = itertools.count(1)


def sign(payload: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp))


def event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_test_{next(_ids):06d}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
    }


def session_completed(
    meta: dict[str, str], *, session: str | None = None, pi: str | None = None, amount: int = 500, **over: Any
) -> dict[str, Any]:
    n = next(_ids)
    obj = {
        "id": session or f"cs_test_{n:06d}",
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "status": "complete",
        "amount_total": amount,
        "currency": "usd",
        "payment_intent": pi or f"pi_test_{n:06d}",
        "metadata": meta,
        **over,
    }
    return event("checkout.session.completed", obj)


def invoice_paid(meta: dict[str, str], *, invoice: str | None = None, amount: int = 900) -> dict[str, Any]:
    n = next(_ids)
    obj = {
        "id": invoice or f"in_test_{n:06d}",
        "object": "invoice",
        "status": "paid",
        "amount_paid": amount,
        "currency": "usd",
        "payment_intent": f"pi_test_in{n:06d}",
        "metadata": {},
        "parent": {"type": "subscription_details", "subscription_details": {"metadata": meta}},
    }
    return event("invoice.payment_succeeded", obj)


def charge_refunded(pi: str, amount: int, refunded: int, *, charge: str | None = None) -> dict[str, Any]:
    obj = {
        "id": charge or f"ch_for_{pi}",
        "object": "charge",
        "amount": amount,
        "amount_refunded": refunded,
        "refunded": refunded >= amount,
        "payment_intent": pi,
    }
    return event("charge.refunded", obj)


def dispute_created(pi: str, amount: int, *, charge: str | None = None) -> dict[str, Any]:
    obj = {
        "id": f"dp_test_{next(_ids):06d}",
        "object": "dispute",
        "amount": amount,
        "charge": charge or f"ch_for_{pi}",
        "payment_intent": pi,
        "status": "needs_response",
    }
    return event("charge.dispute.created", obj)


def signed_post(client: Any, evt: dict[str, Any], secret: str = SECRET, **kw: Any) -> Any:
    payload = json.dumps(evt)
    return client.post(
        "/stripe/webhook",
        content=payload.encode(),
        headers={"Stripe-Signature": sign(payload, secret, **kw), "Content-Type": "application/json"},
    )


class StripeStandIn:
    """POST /v1/checkout/sessions → a session object, POST /v1/billing/meter_events → a meter event; every
    request kept (path, form fields, headers). `fail_with` (status, body): answer every request so."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_with: tuple[int, dict[str, Any]] | None = None
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                standin.requests.append({"path": self.path, "form": form, "headers": dict(self.headers)})
                if standin.fail_with is not None:
                    self._answer(*standin.fail_with)
                elif self.path == "/v1/checkout/sessions":
                    sid = f"cs_test_standin_{len(standin.requests):04d}"
                    self._answer(
                        200,
                        {
                            "id": sid,
                            "object": "checkout.session",
                            "url": f"https://checkout.stripe.com/c/pay/{sid}",
                            "mode": form.get("mode"),
                            "payment_status": "unpaid",
                            "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
                        },
                    )
                elif self.path == "/v1/billing/meter_events":
                    self._answer(
                        200,
                        {
                            "object": "billing.meter_event",
                            "event_name": form.get("event_name"),
                            "identifier": form.get("identifier"),
                            "payload": {"stripe_customer_id": form.get("payload[stripe_customer_id]")},
                            "timestamp": int(form.get("timestamp") or 0),
                            "livemode": False,
                            "created": int(time.time()),
                        },
                    )
                else:
                    self._answer(404, {"error": {"type": "invalid_request_error", "message": "no such endpoint"}})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def stripe_standin() -> Iterator[StripeStandIn]:
    standin = StripeStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


def stripe_config(api_base: str, **over: Any) -> dict[str, Any]:
    """A config file's Stripe settings: webhook secret, Checkout with two packages, the stand-in's URL."""
    return {
        "stripeWebhookSecret": SECRET,
        "stripe": {
            "secretKey": "sk_test_paygate_standin",
            "packages": [
                {"id": "starter", "credits": 100, "priceInCents": 500, "currency": "usd", "name": "100 Credits"},
                {"id": "pro", "credits": 500, "priceInCents": 2000, "name": "500 Credits", "description": "Best"},
            ],
            "successUrl": "https://shop.example.com/paid?s={SESSION_ID}",
            "cancelUrl": "https://shop.example.com/cancelled",
            "apiBase": api_base,
            **over,
        },
    }
