"""Webhook signatures: `X-PayGate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.

The timestamp is inside the signed text, so a captured delivery cannot be replayed later with a
fresh timestamp; receivers reject signatures older than a tolerance (5 minutes by default).
A header may carry several `v1=` values (a receiver rotating secrets checks each); any match passes.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-PayGate-Signature"
DEFAULT_TOLERANCE_SECONDS = 300.0


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def compute_signature(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`."""
    signed = str(int(timestamp)).encode("ascii") + b"." + _as_bytes(body)
    return hmac.new(_as_bytes(secret), signed, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: str | bytes, timestamp: int | None = None) -> str:
    """The `X-PayGate-Signature` header value for `body`, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={compute_signature(secret, t, body)}"


def parse_signature(header: str) -> tuple[int, list[str]] | None:
    """`(timestamp, [v1 signatures])` from a header value, or None when it is malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if name == "t":
            if not value.isdigit() or len(value) > 12:
                return None
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify_signature(
    body: str | bytes,
    header: str | None,
    secret: str | bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when `header` (the `X-PayGate-Signature` value) signs exactly `body` (the raw request body,
    as received, before any JSON parsing) with `secret`, and its timestamp is within `tolerance`
    seconds of `now`. Comparison is constant-time. `tolerance <= 0` disables the age check."""
    if not header:
        return False
    parsed = parse_signature(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    current = time.time() if now is None else now
    if tolerance > 0 and abs(current - timestamp) > tolerance:
        return False
    expected = compute_signature(secret, timestamp, body).encode("ascii")
    matched = False
    for candidate in signatures:  # no early exit: the time taken does not depend on which one matched
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    return matched
