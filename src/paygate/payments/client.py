"""The one Stripe API client of a gateway (Checkout, meter events): the official package's `StripeClient`
over its default `requests` transport, called from a worker thread so the event loop never waits on Stripe;
its retries carry an idempotency key. (Its httpx transport posts with httpx's deprecated `data=<str>`.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import stripe

from paygate.config_stripe import StripeCheckoutConfig

TIMEOUT_SECONDS = 20.0
NETWORK_RETRIES = 2


def stripe_client(config: StripeCheckoutConfig) -> tuple[stripe.StripeClient, Callable[[], Awaitable[None]]]:
    """The client, and what closes its connections (a stop hook)."""
    assert config.secret_key, "config_stripe checks it"
    transport = stripe.RequestsClient(timeout=TIMEOUT_SECONDS)
    client = stripe.StripeClient(
        config.secret_key,
        base_addresses={"api": config.api_base} if config.api_base else None,
        http_client=transport,
        max_network_retries=NETWORK_RETRIES,
    )

    async def close() -> None:
        transport.close()  # type: ignore[no-untyped-call]

    return client, close
