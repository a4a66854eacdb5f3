"""Payments (payments/, docs/payments.md): Stripe's ledger, webhook and Checkout, built from the settings
(`stripeSecret` turns the webhook on, `stripe.secretKey` Checkout), and their routers."""

from __future__ import annotations

import logging

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
    if settings.stripe is not None and settings.stripe.checkout_enabled:
        from paygate.payments.checkout import StripeCheckout

        checkout = StripeCheckout(settings.stripe, rt.store, rt.events.publish)
        rt.on_stop.append(checkout.close)
    return {
        "stripe": stripe_routes.client_router(webhook, checkout),
        "stripe_admin": stripe_routes.admin_router(rt.guard, ledger),
    }
