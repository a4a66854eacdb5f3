"""The Stripe settings: the reference's names, checked at start (a wrong one is exit 2, as any setting)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from paygate.config import load_settings

PACKAGE = {"id": "starter", "credits": 100, "priceInCents": 500, "name": "100 Credits"}
CHECKOUT = {
    "secretKey": "sk_test_x",
    "packages": [PACKAGE],
    "successUrl": "https://a.example/ok",
    "cancelUrl": "https://a.example/no",
}


def settings(**raw: Any) -> Any:
    return load_settings({"serverCommand": "x", **raw})


def test_the_webhook_secret_under_either_name_and_checkout() -> None:
    assert settings(stripeSecret="whsec_a").stripe_signing_secret == "whsec_a"
    assert settings(stripeWebhookSecret="whsec_b").stripe_signing_secret == "whsec_b"
    assert settings().stripe_signing_secret is None
    s = settings(stripe=CHECKOUT)
    assert s.stripe.checkout_enabled and s.stripe.packages[0].currency == "usd" and s.stripe.collect_email
    metering_only = settings(stripe={"secretKey": "sk_test_x", "meter": {"eventName": "credits"}})
    assert not metering_only.stripe.checkout_enabled and metering_only.stripe.meter.interval_seconds == 60


@pytest.mark.parametrize(
    "stripe",
    [
        {**CHECKOUT, "successUrl": None},  # Checkout needs both return URLs
        {**CHECKOUT, "cancelUrl": "ftp://a.example/no"},
        {**CHECKOUT, "packages": [PACKAGE, PACKAGE]},  # ids unique
        {**CHECKOUT, "packages": [{**PACKAGE, "priceInCents": 0}]},
        {**CHECKOUT, "packages": [{**PACKAGE, "currency": "USD"}]},
        {**CHECKOUT, "packages": [{**PACKAGE, "price": 5}]},  # the reference's name is priceInCents
        {"meter": {"eventName": "credits"}},  # metering needs the API key
        {"secretKey": "sk_test_x", "meter": {"eventName": "credits", "intervalSeconds": 1}},
        {**CHECKOUT, "unknown": 1},
    ],
)
def test_a_wrong_stripe_setting_is_refused(stripe: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(stripe=stripe)
