"""Webhooks: batched, signed, retried, durable delivery of published events to HTTP receivers.

Modules: signing (X-PayGate-Signature), ssrf (which URLs and addresses may be called), payload
(events as receivers see them), routing (default URL, filters, per-key URLs), queue (the SQLite
outbox, batches and dead letters), sender (one HTTP POST), delivery (the background worker:
batching, retries, dead-lettering, the delivery log), service (what the HTTP API calls).

Public helpers for webhook receivers: verify a PayGate delivery's signature.

    from paygate.webhooks import verify_signature

    ok = verify_signature(raw_body, request.headers.get("X-PayGate-Signature"), "whsec_…")

See docs/webhooks.md.
"""

from __future__ import annotations

from paygate.webhooks.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    compute_signature,
    parse_signature,
    sign,
    verify_signature,
)

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SIGNATURE_HEADER",
    "compute_signature",
    "parse_signature",
    "sign",
    "verify_signature",
]
