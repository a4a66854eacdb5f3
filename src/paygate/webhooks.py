"""Public helpers for webhook receivers: verify a PayGate delivery's signature.

    from paygate.webhooks import verify_signature

    ok = verify_signature(raw_body, request.headers.get("X-PayGate-Signature"), "whsec_…")

See docs/webhooks.md.
"""

from __future__ import annotations

from paygate.services.webhooks.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    compute_signature,
    parse_signature,
    sign,
    verify_signature,
)

__all__ = ["DEFAULT_TOLERANCE_SECONDS", "SIGNATURE_HEADER", "compute_signature", "parse_signature", "sign",
           "verify_signature"]
