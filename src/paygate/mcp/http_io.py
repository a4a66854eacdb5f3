"""Small I/O pieces only /mcp's handlers share: content negotiation and billing headers (the general
ASGI pieces are in `paygate/asgi.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from paygate.asgi import JSON

if TYPE_CHECKING:
    from paygate.mcp.call_context import CallContext
    from paygate.mcp.dispatcher import Dispatcher

SSE = b"text/event-stream"


def prefers_sse(accept: bytes) -> bool:
    """SSE when the client takes nothing else, or names it first (equal weights: first listed wins)."""
    if SSE not in accept:
        return False
    return accept.lstrip().startswith(SSE) or (JSON not in accept and b"*/*" not in accept)


def billing_headers(ctx: CallContext) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    if ctx.rate is not None and ctx.rate.limit:
        out += [
            (b"x-ratelimit-limit", str(ctx.rate.limit).encode()),
            (b"x-ratelimit-remaining", str(ctx.rate.remaining).encode()),
            (b"x-ratelimit-reset", str(ctx.rate.reset_seconds).encode()),
        ]
    if ctx.credits is not None:
        out.append((b"x-credits-remaining", str(ctx.credits).encode()))
    if ctx.surcharge:
        out.append((b"x-output-surcharge", str(ctx.surcharge).encode()))
    if ctx.payment_response is not None:  # an x402 settlement (mcp/x402_calls.py): x402 v1's name and v2's
        out += [(b"x-payment-response", ctx.payment_response), (b"payment-response", ctx.payment_response)]
    if ctx.headers_out:  # the traffic controls' (X-Cache, Retry-After, Deprecation, ...)
        out += ctx.headers_out
    return out


def answer_headers(dispatcher: Dispatcher, ctx: CallContext) -> list[tuple[bytes, bytes]]:
    """The billing headers of a JSON answer; a request that touched no rate window still gets them."""
    if ctx.raw_key and ctx.rate is None:
        dispatcher.describe_key(ctx)
    return billing_headers(ctx)
