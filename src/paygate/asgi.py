"""Raw ASGI pieces shared by the outer app layer, /mcp and the few routes that read headers themselves:
the ASGI callable types, headers in, JSON out. Neutral ground, so neither the HTTP API nor the MCP
endpoint imports the other for them (Starlette keeps the same in `starlette.types`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

JSON = b"application/json"


def header_map(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope["headers"]}


def api_key_from(headers: dict[bytes, bytes]) -> str | None:
    """The client's API key: X-API-Key, else a Bearer token (headers as `header_map` gives them)."""
    raw = headers.get(b"x-api-key")
    if raw:
        return raw.decode("latin-1").strip() or None
    auth = headers.get(b"authorization")
    if auth and auth[:7].lower() == b"bearer ":
        return auth[7:].decode("latin-1").strip() or None
    return None


async def send_bytes(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006
    await send_bytes(send, status, orjson.dumps(payload), [(b"content-type", JSON), *headers])
