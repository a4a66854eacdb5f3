"""Small ASGI I/O pieces /mcp's handlers share: headers in, bytes out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from paygate.mcp.dispatcher import CallContext, Dispatcher

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

JSON = b"application/json"
SSE = b"text/event-stream"


def header_map(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope["headers"]}


def api_key_from(headers: dict[bytes, bytes]) -> str | None:
    raw = headers.get(b"x-api-key")
    if raw:
        return raw.decode("latin-1").strip() or None
    auth = headers.get(b"authorization")
    if auth and auth[:7].lower() == b"bearer ":
        return auth[7:].decode("latin-1").strip() or None
    return None


async def send_bytes(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006
    await send_bytes(send, status, orjson.dumps(payload), [(b"content-type", JSON), *headers])


def prefers_sse(accept: bytes) -> bool:
    """SSE when the client takes nothing else, or names it first (equal weights: first listed wins)."""
    if SSE not in accept:
        return False
    return accept.lstrip().startswith(SSE) or (JSON not in accept and b"*/*" not in accept)


def billing_headers(ctx: CallContext) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    if ctx.rate is not None and ctx.rate.limit:
        out += [(b"x-ratelimit-limit", str(ctx.rate.limit).encode()),
                (b"x-ratelimit-remaining", str(ctx.rate.remaining).encode()),
                (b"x-ratelimit-reset", str(ctx.rate.reset_seconds).encode())]
    if ctx.credits is not None:
        out.append((b"x-credits-remaining", str(ctx.credits).encode()))
    if ctx.surcharge:
        out.append((b"x-output-surcharge", str(ctx.surcharge).encode()))
    return out



def answer_headers(dispatcher: Dispatcher, ctx: CallContext) -> list[tuple[bytes, bytes]]:
    """The billing headers of a JSON answer; a request that touched no rate window still gets them."""
    if ctx.raw_key and ctx.rate is None:
        dispatcher.describe_key(ctx)
    return billing_headers(ctx)
