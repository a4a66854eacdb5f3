"""Stripe's settings (payments/, docs/payments.md): `Settings` inherits these fields.

The reference's names: `stripeSecret` (`--stripe-secret`, `PAYGATE_STRIPE_SECRET`) and its alias
`stripeWebhookSecret` are the *webhook signing secret* (`whsec_…`), which turns on `POST /stripe/webhook`;
`stripe {secretKey, packages, successUrl, cancelUrl, collectEmail}` turns on Checkout. `stripe.apiBase`
is ours: where the Stripe API is reached (Stripe itself unless set; a local stand-in in tests).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from paygate.core.values import MAX_CREDITS

MAX_PACKAGES = 50


def web_url_problem(url: str) -> str | None:
    """Why `url` cannot be a page Stripe sends a buyer back to (None when it can): http(s) with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an http(s) URL with a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    return None


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class StripePackage(_Model):
    """A credit package sold through Checkout: `credits` for `priceInCents` (the currency's smallest unit)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    credits: int = Field(ge=1, le=MAX_CREDITS)
    price_in_cents: int = Field(ge=1, le=99_999_999)  # Stripe's unit_amount limit
    currency: str = Field(default="usd", pattern=r"^[a-z]{3}$")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=500)


class StripeMeterConfig(_Model):
    """Usage reported to a Stripe Billing Meter (payments/metering.py): credits charged per key per window."""

    event_name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")  # the meter's event name in Stripe
    customer_tag: str = Field(default="stripeCustomerId", min_length=1, max_length=100)  # key tag: cus_…
    interval_seconds: int = Field(default=60, ge=10, le=3600)  # one meter event per key per window
    max_attempts: int = Field(default=8, ge=1, le=50)  # then the event is dead-lettered


class StripeCheckoutConfig(_Model):
    secret_key: str | None = Field(default=None, min_length=1)  # sk_… or rk_…: Checkout needs it
    packages: list[StripePackage] = Field(default_factory=list, max_length=MAX_PACKAGES)
    success_url: str | None = Field(default=None, max_length=2048)  # {SESSION_ID} becomes Stripe's session id
    cancel_url: str | None = Field(default=None, max_length=2048)
    collect_email: bool = True  # Checkout creates a Stripe customer (with the buyer's email) when needed
    api_base: str | None = Field(default=None, max_length=2048)  # ours: https://api.stripe.com unless set
    meter: StripeMeterConfig | None = None  # ours: metered billing (needs secretKey)

    @field_validator("success_url", "cancel_url", "api_base")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        if value is not None and (problem := web_url_problem(value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _checkout(self) -> StripeCheckoutConfig:
        ids = [p.id for p in self.packages]
        if len(set(ids)) != len(ids):
            raise ValueError("package ids must be unique")
        if self.secret_key and self.packages and not (self.success_url and self.cancel_url):
            raise ValueError("Checkout (secretKey and packages) needs successUrl and cancelUrl")
        if self.meter is not None and not self.secret_key:
            raise ValueError("meter needs secretKey")
        return self

    @property
    def checkout_enabled(self) -> bool:
        return bool(self.secret_key and self.packages)


class StripeSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    stripe_secret: str | None = None  # the webhook signing secret: enables POST /stripe/webhook
    stripe_webhook_secret: str | None = None  # the reference's config-file name for it
    stripe: StripeCheckoutConfig | None = None

    @property
    def stripe_signing_secret(self) -> str | None:
        return self.stripe_secret or self.stripe_webhook_secret or None
