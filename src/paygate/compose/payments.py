"""Payments (payments/, docs/payments.md): Stripe's ledger, webhook and Checkout, built from the settings
(`stripeSecret` turns the webhook on, `stripe.secretKey` Checkout), and their routers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter

from paygate.payments.routes import stripe as stripe_routes
from paygate.payments.stripe_ledger import StripeLedger
from paygate.runtime import Runtime

log = logging.getLogger("paygate.payments")


def payment_routers(rt: Runtime) -> dict[str, APIRouter]:
    settings = rt.settings
    secret = settings.stripe_signing_secret
    ledger = StripeLedger(rt.store, rt.events.publish)
    # the stripe package is imported here, only when Stripe is configured (~0.45 s at start)
    webhook = checkout = None
    if secret:
        from paygate.payments.webhook import StripeWebhook

        webhook = StripeWebhook(ledger, secret)
        if secret.startswith(("sk_", "rk_")):
            log.warning("stripeSecret looks like an API key: it is the webhook signing secret (whsec_...)")
    meter = None
    config = settings.stripe
    if config is not None and config.secret_key:
        from paygate.payments.checkout import StripeCheckout
        from paygate.payments.client import stripe_client
        from paygate.payments.metering import MeterReporter

        client, close = stripe_client(config)
        rt.on_stop.append(close)
        if config.checkout_enabled:
            checkout = StripeCheckout(config, rt.store, rt.events.publish, client, rt.billing.credentials)
        if config.meter is not None:
            meter_events = client.v1.billing.meter_events

            def send(event: dict[str, Any]) -> None:
                meter_events.create(event)  # type: ignore[arg-type]

            meter = MeterReporter(rt.store, config.meter, send, rt.events.publish)
            rt.tickers.append(meter.tick)
            rt.on_stop.append(meter.stop)
    return {
        "stripe": stripe_routes.client_router(webhook, checkout),
        "stripe_admin": stripe_routes.admin_router(rt.guard, ledger, meter),
    }
