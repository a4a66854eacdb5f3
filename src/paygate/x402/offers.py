"""What a paid call must pay (x402 v2 `PaymentRequirements`, scheme `exact`) and what a payment is.

Built from the package's schemas, without its EVM extra (web3): the gateway never signs or checks
signatures itself; the facilitator does."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import orjson
from pydantic import ValidationError
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements, ResourceInfo

from paygate.config_x402 import X402Config

SCHEME = "exact"
MAX_HEADER_CHARS = 16_384  # a payment header is ~1 KB; anything far larger is refused unread


class BadPayment(ValueError):
    """A payment that cannot be read (not base64 JSON, not a v2 PaymentPayload)."""


def atomic_amount(credits: int, config: X402Config) -> int:
    """The price in the asset's smallest unit: rounded up (never less than asked) and at least 1."""
    scaled: int = credits * 10**config.asset_decimals
    return max(1, -(-scaled // config.credits_per_dollar))


def resource_of(tool: str) -> ResourceInfo:
    return ResourceInfo(url=f"mcp://tool/{tool}", description=f"Tool: {tool}", mime_type="application/json")


def requirements(credits: int, config: X402Config) -> PaymentRequirements:
    return PaymentRequirements(
        scheme=SCHEME,
        network=config.network,
        asset=config.asset,
        amount=str(atomic_amount(credits, config)),
        pay_to=config.pay_to,
        max_timeout_seconds=config.max_timeout_seconds,
        extra={"name": config.asset_name, "version": config.asset_version},
    )


def payment_required(tool: str, credits: int, config: X402Config, error: str) -> dict[str, Any]:
    """The `PaymentRequired` object (camelCase, as sent on the wire)."""
    body = PaymentRequired(error=error, resource=resource_of(tool), accepts=[requirements(credits, config)])
    return body.model_dump(by_alias=True, exclude_none=True)


def parse_meta(value: Any) -> PaymentPayload:
    """`params._meta["x402/payment"]` (an object, or its JSON text)."""
    try:
        if isinstance(value, str):
            value = orjson.loads(value)
        if not isinstance(value, dict) or value.get("x402Version", 2) != 2:
            raise BadPayment("x402/payment must be an x402 v2 PaymentPayload object")
        return PaymentPayload.model_validate(value)
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise BadPayment(f"x402/payment is not a PaymentPayload: {_first_error(exc)}") from None


def parse_header(value: bytes) -> PaymentPayload:
    """The `X-PAYMENT` (or `PAYMENT-SIGNATURE`) header: base64 of the payload's JSON."""
    if len(value) > MAX_HEADER_CHARS:
        raise BadPayment("the payment header is too large")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadPayment("the payment header is not base64") from None
    return parse_meta(decoded.decode("utf-8", "replace"))


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return "not JSON"


def payment_id(payload: PaymentPayload) -> str:
    """A payment's identity, the same however it is re-encoded: for an EIP-3009 authorization its chain,
    token, payer and nonce (what the chain itself refuses to use twice); otherwise the digest of the
    signed payload."""
    inner = payload.payload
    auth = inner.get("authorization")
    accepted = payload.accepted
    if isinstance(auth, dict) and isinstance(auth.get("nonce"), str) and isinstance(auth.get("from"), str):
        basis = f"{accepted.network}|{accepted.asset.lower()}|{auth['from'].lower()}|{auth['nonce'].lower()}"
    else:
        basis = orjson.dumps(inner, option=orjson.OPT_SORT_KEYS).decode()
    return hashlib.sha256(basis.encode()).hexdigest()


def payer_of(payload: PaymentPayload) -> str | None:
    auth = payload.payload.get("authorization")
    payer = auth.get("from") if isinstance(auth, dict) else None
    return payer if isinstance(payer, str) and 0 < len(payer) <= 128 else None


def matches(payload: PaymentPayload, offered: PaymentRequirements) -> bool:
    """The payment is for exactly what was offered (scheme, chain, token, amount, payee, extra)."""
    got = payload.accepted
    return (
        got.scheme == offered.scheme
        and got.network == offered.network
        and got.asset.lower() == offered.asset.lower()
        and got.amount == offered.amount
        and got.pay_to.lower() == offered.pay_to.lower()
        and all(got.extra.get(k) == v for k, v in offered.extra.items())
    )
