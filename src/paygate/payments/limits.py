"""Sizes the Stripe routes and services share, apart from them so that routes (and a gateway without
Stripe) never import the `stripe` package, which costs ~0.45 s at start."""

from __future__ import annotations

MAX_BODY_BYTES = 512 * 1024  # a webhook body: Stripe's events are a few KB
MAX_EXTRA_METADATA = 10  # the reference's limits on a buyer's own Checkout metadata
MAX_METADATA_KEY = 100
MAX_METADATA_VALUE = 500
