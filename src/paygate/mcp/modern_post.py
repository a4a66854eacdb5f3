"""`POST /mcp` for a 2026-07-28 request (modern.py): one request in, one answer out, no session.

The request is checked (envelope, routing headers, version), stripped of its envelope and handled
as any other: the same gate, charge and backend session. Interactive requests run as an exchange
(input_required.py), so the server's questions reach the client as `input_required` answers and
a retry carries the call on without a second charge. Errors get the HTTP status the revision's
table gives them.
"""

from __future__ import annotations

from typing import Any

import orjson

from paygate.asgi import Receive, Scope, Send, api_key_from, header_map, send_bytes
from paygate.billing.facts import ClientFacts
from paygate.core import errors
from paygate.mcp import jsonrpc, modern
from paygate.mcp.call_context import CallContext
from paygate.mcp.channel import PostChannel
from paygate.mcp.dispatcher import Dispatcher
from paygate.mcp.http_io import SSE, answer_headers, billing_headers
from paygate.mcp.input_required import Exchanges
from paygate.mcp.origin import Origin

ERROR_STATUS = {
    errors.PARSE_ERROR: 400,
    errors.INVALID_REQUEST: 400,
    errors.INVALID_PARAMS: 400,
    modern.HEADER_MISMATCH: 400,
    modern.UNSUPPORTED_PROTOCOL_VERSION: 400,
    errors.METHOD_NOT_FOUND: 404,
}


class ModernPost:
    def __init__(self, dispatcher: Dispatcher, hold_seconds: float) -> None:
        self.dispatcher = dispatcher
        self.exchanges = Exchanges(dispatcher.relay, hold_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, payload: Any) -> None:
        headers = header_map(scope)
        if isinstance(payload, list):
            await _send(
                send,
                jsonrpc.error(
                    None, errors.INVALID_REQUEST, f"JSON-RPC batches are not part of protocol {modern.MODERN_VERSION}"
                ),
            )
            return
        invalid = jsonrpc.validate_request(payload)
        if invalid is not None:
            await _send(send, invalid)
            return
        if "method" not in payload or "id" not in payload:
            await send_bytes(send, 202, b"", [])  # no client-to-server notifications or answers here
            return
        refusal = modern.envelope_refusal(payload, headers)
        if refusal is not None:
            await _send(send, refusal)
            return

        client = scope.get("client")
        ctx = CallContext(
            api_key_from(headers),
            scope.get("paygate.request_id", ""),
            client=ClientFacts(client[0] if client else None, headers.get(b"x-forwarded-for"), headers),
        )
        channel = PostChannel(send, SSE in headers.get(b"accept", b""), lambda: billing_headers(ctx))
        capabilities = payload["params"]["_meta"].get(modern.META_CAPABILITIES)
        origin = Origin(None, channel, receive, capabilities if isinstance(capabilities, dict) else {})
        ctx.origin = origin
        try:
            answer = await self._answer(payload, ctx, origin)
        finally:
            ctx.origin = None  # see endpoint.py: a cycle left for the garbage collector costs every request
        answer = modern.completed(payload["method"], answer)
        if not await channel.finish_if_streaming(answer):
            await _send(send, answer, answer_headers(self.dispatcher, ctx))

    async def _answer(self, message: dict[str, Any], ctx: CallContext, origin: Origin) -> dict[str, Any]:
        method = message["method"]
        if method == "server/discover":
            return jsonrpc.result(message["id"], modern.discover_result(self.dispatcher.backend.init_result))
        if method not in modern.METHODS:
            return jsonrpc.error(
                message["id"], errors.METHOD_NOT_FOUND, f"Method not found: {method} (protocol {modern.MODERN_VERSION})"
            )
        if isinstance(message["params"].get("requestState"), str):
            return await self.exchanges.resume(message, ctx.raw_key, origin)
        upstream = modern.for_backend(message)

        async def handle() -> dict[str, Any] | None:
            return await self.dispatcher.handle(upstream, ctx)

        return await self.exchanges.start(message, ctx.raw_key, origin, handle)


async def _send(send: Send, answer: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None) -> None:
    error = answer.get("error")
    status = ERROR_STATUS.get(int(error.get("code") or 0), 200) if isinstance(error, dict) else 200
    await send_bytes(send, status, orjson.dumps(answer), [(b"content-type", b"application/json"), *(headers or [])])
