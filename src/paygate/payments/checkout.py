"""Credit packages sold through Stripe Checkout: GET /stripe/packages, POST /stripe/checkout.

A session is created with the official `stripe` package (payments/client.py, in a worker thread). The session's metadata
names the buyer's key by its hash (stripe_events.py says why) and the package's credits; the same
metadata goes on the payment intent, so the charge a refund or dispute names carries it too.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import stripe

from paygate.billing.usage import client_record
from paygate.config_stripe import StripeCheckoutConfig, StripePackage, web_url_problem
from paygate.core.domain_errors import Invalid, NotFound, Unavailable
from paygate.core.records import KeyRecord
from paygate.credentials.resolver import Credentials
from paygate.keys.service import Publish
from paygate.payments.stripe_events import CREDITS_FIELD, HASH_FIELD, PACKAGE_FIELD
from paygate.store.roles import KeyTable


class CheckoutUnavailable(Unavailable):
    """Stripe refused or could not be reached: nothing was created."""


def package_view(p: StripePackage) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "credits": p.credits,
        "priceInCents": p.price_in_cents,
        "currency": p.currency,
    }


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


class StripeCheckout:
    def __init__(
        self,
        config: StripeCheckoutConfig,
        keys: KeyTable,
        publish: Publish,
        client: stripe.StripeClient,
        credentials: Credentials | None = None,
    ) -> None:
        assert config.secret_key and config.success_url and config.cancel_url, "config_stripe checks these"
        self.config = config
        self.keys = keys
        self.publish = publish
        self._packages = {p.id: p for p in config.packages}
        self.client = client
        self.credentials = credentials  # OAuth access tokens stand for their key (billing/usage.py)

    def buyer(self, raw: str | None) -> KeyRecord:
        """The live key presented (X-API-Key or Bearer), or a 401."""
        return client_record(self.keys, raw, self.credentials)

    def packages(self) -> list[dict[str, Any]]:
        return [package_view(p) for p in self._packages.values()]

    def redirect(self, url: str | None, configured: str, field: str) -> str:
        """A buyer's own return URL: an http(s) page on the same origin as the configured one (anything
        else would let a key holder send Stripe's buyers anywhere); the configured one when absent."""
        if url is None:
            return configured
        problem = web_url_problem(url)
        if problem is None and _origin(url) != _origin(configured):
            problem = "must be on the same origin as the configured one"
        if problem:
            raise Invalid(f"{field} {problem}")
        return url

    async def create(
        self,
        record: KeyRecord,
        package_id: str,
        success_url: str | None = None,
        cancel_url: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        package = self._packages.get(package_id)
        if package is None:
            raise NotFound(f"Unknown package: {package_id}", packages=sorted(self._packages))
        assert self.config.success_url and self.config.cancel_url
        success = self.redirect(success_url, self.config.success_url, "successUrl")
        cancel = self.redirect(cancel_url, self.config.cancel_url, "cancelUrl")
        ours = {HASH_FIELD: record.key_hash, CREDITS_FIELD: str(package.credits), PACKAGE_FIELD: package.id}
        extra = {k: v for k, v in (metadata or {}).items() if not k.startswith("paygate_")}
        product: dict[str, Any] = {"name": package.name}
        if package.description:
            product["description"] = package.description
        params: dict[str, Any] = {
            "mode": "payment",
            "success_url": success.replace("{SESSION_ID}", "{CHECKOUT_SESSION_ID}"),
            "cancel_url": cancel,
            "line_items": [
                {
                    "price_data": {
                        "currency": package.currency,
                        "unit_amount": package.price_in_cents,
                        "product_data": product,
                    },
                    "quantity": 1,
                }
            ],
            "metadata": {**extra, **ours},
            "payment_intent_data": {"metadata": ours},
        }
        if self.config.collect_email:
            params["customer_creation"] = "if_required"
        try:
            create = self.client.v1.checkout.sessions.create
            session = await asyncio.to_thread(create, params)  # type: ignore[arg-type]
        except stripe.StripeError as exc:
            message = (exc.user_message or str(exc) or type(exc).__name__)[:200]
            raise CheckoutUnavailable(f"Stripe Checkout error: {message}") from exc
        self.publish(
            "stripe.checkout_created",
            record.masked,
            keyMasked=record.masked,
            sessionId=session.id,
            packageId=package.id,
            credits=package.credits,
        )
        return {"sessionId": session.id, "url": session.url, "packageId": package.id, "credits": package.credits}
