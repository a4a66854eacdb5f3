"""Stripe: POST /stripe/webhook (Stripe's signature), GET /stripe/packages and GET /stripe/checkout
(public: the packages), POST /stripe/checkout (the buyer's X-API-Key or Bearer), GET /stripe/owed (admin)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field, StringConstraints

from paygate.api.common import AdminGuard, Body, actor
from paygate.asgi import api_key_from, header_map
from paygate.core.domain_errors import NotFound, TooLarge
from paygate.payments.limits import MAX_BODY_BYTES, MAX_EXTRA_METADATA, MAX_METADATA_KEY, MAX_METADATA_VALUE
from paygate.payments.stripe_ledger import StripeLedger

if TYPE_CHECKING:  # the services import the stripe package: only a gateway with Stripe configured loads it
    from paygate.payments.checkout import StripeCheckout
    from paygate.payments.metering import MeterReporter
    from paygate.payments.webhook import StripeWebhook

MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_METADATA_KEY)]
MetaValue = Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE)]


class CheckoutBody(Body):
    package_id: str = Field(min_length=1, max_length=64)
    success_url: str | None = Field(default=None, max_length=2048, description="same origin as stripe.successUrl")
    cancel_url: str | None = Field(default=None, max_length=2048, description="same origin as stripe.cancelUrl")
    metadata: dict[MetaKey, MetaValue] | None = Field(
        default=None, max_length=MAX_EXTRA_METADATA, description="extra session metadata (paygate_* are ours)"
    )


def client_router(webhook: StripeWebhook | None, checkout: StripeCheckout | None) -> APIRouter:
    r = APIRouter(tags=["payments"])

    @r.post("/stripe/webhook")
    async def stripe_webhook(request: Request) -> dict[str, Any]:
        """Stripe's events (signed with the webhook secret, `stripeSecret`): a paid Checkout Session or
        invoice credits the key in its metadata once; a refund or dispute takes the credits back."""
        if webhook is None:
            raise NotFound("Stripe integration not configured")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise TooLarge("Stripe webhook body too large")
        return webhook.handle(body, request.headers.get("stripe-signature"))

    def packages() -> dict[str, Any]:
        if checkout is None:
            return {"packages": [], "configured": False}
        return {"packages": checkout.packages(), "configured": True}

    @r.get("/stripe/packages")
    async def stripe_packages() -> dict[str, Any]:
        """The credit packages on sale (public)."""
        return packages()

    @r.get("/stripe/checkout")
    async def stripe_checkout_packages() -> dict[str, Any]:
        """The same as GET /stripe/packages (the reference answers GET here with the packages)."""
        return packages()

    @r.post("/stripe/checkout")
    async def stripe_checkout(body: CheckoutBody, request: Request) -> dict[str, Any]:
        """Create a Stripe Checkout Session for a package, for the caller's own key: its URL is where the
        buyer pays; the webhook credits the key once Stripe says it is paid."""
        if checkout is None:
            raise NotFound("Stripe Checkout not configured")
        record = checkout.buyer(api_key_from(header_map(request.scope)))
        return await checkout.create(record, body.package_id, body.success_url, body.cancel_url, body.metadata)

    return r


def admin_router(guard: AdminGuard, ledger: StripeLedger | None, meter: MeterReporter | None) -> APIRouter:
    r = guard.router("payments")

    def reporter() -> MeterReporter:
        if meter is None:
            raise NotFound("Stripe metering not configured (stripe.meter)")
        return meter

    @r.get("/stripe/meter")
    async def stripe_meter() -> dict[str, Any]:
        """Metered billing: the meter's event name, how far usage was reported, meter events waiting to be
        sent, and the dead-lettered ones."""
        return reporter().status()

    @r.post("/stripe/meter/requeue")
    async def stripe_meter_requeue(request: Request) -> dict[str, Any]:
        """Queue every dead-lettered meter event again (same identifiers: Stripe keeps one of each)."""
        return {"requeued": reporter().requeue(actor(request))}

    @r.get("/stripe/owed")
    async def stripe_owed() -> dict[str, Any]:
        """Keys that owe credits: refunds and disputes that could not take back what was already spent."""
        entries = ledger.owed_list() if ledger is not None else []
        return {"count": len(entries), "totalOwed": sum(int(e["owed"]) for e in entries), "keys": entries}

    return r
