"""The /mcp route as a lean, raw ASGI app (no framework on the hot path).

POST carries JSON-RPC (one message or a batch) and answers JSON or SSE by
`Accept`; GET opens a session's server-to-client SSE stream; DELETE ends a
session. Malformed JSON → -32700, a bad message → -32600.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

import orjson

from paygate.asgi import JSON, Receive, Scope, Send, api_key_from, header_map, send_bytes, send_json
from paygate.billing.facts import ClientFacts
from paygate.core import errors
from paygate.core.netaddr import client_ip
from paygate.mcp import jsonrpc
from paygate.mcp.access_checks import address_refusal, client_address, signature_refusal
from paygate.mcp.call_context import CallContext
from paygate.mcp.channel import PostChannel
from paygate.mcp.dispatcher import Dispatcher
from paygate.mcp.gate_answers import denial_error
from paygate.mcp.get_stream import serve_stream
from paygate.mcp.http_checks import batch_refusal, origin_refusal, version_refusal
from paygate.mcp.http_io import SSE, answer_headers, billing_headers, prefers_sse
from paygate.mcp.modern import is_modern
from paygate.mcp.modern_post import ModernPost
from paygate.mcp.origin import Origin
from paygate.mcp.session_rate import SESSION_RATE_MESSAGE, SessionRate
from paygate.mcp.sessions import Session, SessionManager
from paygate.serving import ServingState

if TYPE_CHECKING:
    from paygate.policy.ip_access import IpAccess
    from paygate.policy.signing import Signing

PRIMING_VERSION = "2025-11-25"  # the first revision whose clients expect a priming event (SEP-1699)
# (scheme, headers, credential) -> the WWW-Authenticate value and a description of a request to refuse
# with 401, or None (oauth/access.py's BearerChallenge, set by the composition root when OAuth is on)
BearerCheck = Callable[[str, dict[bytes, bytes], str | None], tuple[bytes, str] | None]
# (scheme, headers, tool) -> the WWW-Authenticate value of a call refused `insufficient_scope`
ScopeCheck = Callable[[str, dict[bytes, bytes], str], bytes]


class McpEndpoint:
    def __init__(
        self,
        dispatcher: Dispatcher,
        sessions: SessionManager,
        max_body: int,
        serving: ServingState,
        allowed_origins: Collection[str] = (),
        *,
        max_batch_size: int = 100,
        max_batch_response_bytes: int = 8 * 1_048_576,
        session_rate: SessionRate | None = None,
        trusted_proxies: tuple[str, ...] = (),
    ) -> None:
        self.dispatcher = dispatcher
        self.modern = ModernPost(dispatcher, dispatcher.tool_timeout)
        self.allowed_origins = frozenset(allowed_origins)
        self.sessions = sessions
        self.max_body = max_body
        self.serving = serving  # draining and maintenance: plain attribute reads per request
        self.inflight = 0
        self.max_batch_size = max_batch_size
        self.max_batch_response_bytes = max_batch_response_bytes
        self.session_rate = session_rate or SessionRate(0)  # new sessions per address per minute
        self.trusted_proxies = trusted_proxies
        self.bearer_challenge: BearerCheck | None = None  # OAuth on: no credential, or a refused token, is a 401
        self.scope_challenge: ScopeCheck | None = None  # OAuth on: a tool outside the token's scopes is a 403
        self.ip_access: IpAccess | None = None  # global IP rules (policy/ip_access.py), set by compose
        self.signing: Signing | None = None  # keys that must sign their requests (policy/signing.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        for name, value in scope["headers"]:
            if name == b"origin":  # DNS-rebinding protection (http_checks.py)
                refusal = origin_refusal(value, self.allowed_origins)
                if refusal is not None:
                    await send_json(send, 403, refusal)
                    return
        access = self.ip_access
        if access is not None and access.active:
            refused = address_refusal(access, client_address(scope, self.trusted_proxies))
            if refused is not None:
                await send_json(send, 403, refused)
                return
        if method in ("POST", "GET") and self.serving.maintenance.enabled:
            await self._in_maintenance(send)  # DELETE still ends a session: clients may clean up
            return
        if (
            self.bearer_challenge is not None
            and method in ("POST", "GET", "DELETE")
            and await self._challenged(scope, send)
        ):
            return
        if method == "POST":
            self.inflight += 1
            try:
                await self._post(scope, receive, send)
            finally:
                self.inflight -= 1
        elif method == "GET":
            await self._get(scope, receive, send)
        elif method == "DELETE":
            await self._delete(scope, send)
        else:
            await send_json(
                send,
                405,
                jsonrpc.error(None, errors.INVALID_REQUEST, "Method not allowed"),
                [(b"allow", b"GET, POST, DELETE")],
            )

    async def _challenged(self, scope: Scope, send: Send) -> bool:
        """The MCP authorization spec's 401 (2025-11-25): its `resource_metadata` leads the client to the
        authorization server."""
        assert self.bearer_challenge is not None
        headers = header_map(scope)
        refused = self.bearer_challenge(scope.get("scheme", "http"), headers, api_key_from(headers))
        if refused is None:
            return False
        challenge, description = refused
        body = jsonrpc.error(None, errors.INVALID_REQUEST, description, {"reason": "unauthorized", "httpStatus": 401})
        await send_json(send, 401, body, [(b"www-authenticate", challenge)])
        return True

    async def _in_maintenance(self, send: Send) -> None:
        reason = errors.reason("maintenance_mode")
        await send_json(
            send,
            503,
            jsonrpc.error(
                None, reason.code, self.serving.maintenance.message, {"reason": reason.name, "httpStatus": 503}
            ),
            [(b"retry-after", b"60")],
        )

    # POST ------------------------------------------------------------------
    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        headers = scope["headers"]
        for name, value in headers:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.serving.draining:
            await send_json(
                send,
                503,
                jsonrpc.error(None, errors.BACKEND_UNAVAILABLE, "Server is shutting down"),
                [(b"retry-after", b"5")],
            )
            return
        headers = header_map(scope)
        body = await self._read_body(scope, receive)
        if body is None:
            await send_json(
                send, 413, jsonrpc.error(None, errors.INVALID_REQUEST, f"Request body over {self.max_body} bytes")
            )
            return
        signing = self.signing
        if signing is not None and signing.keys:
            unsigned = signature_refusal(self, scope, headers, body)
            if unsigned is not None:
                await send_json(send, 401, unsigned)
                return
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            await send_json(send, 400, jsonrpc.error(None, errors.PARSE_ERROR, "Parse error"))
            return
        messages = payload if isinstance(payload, list) else [payload]
        if not messages:
            await send_json(send, 400, jsonrpc.error(None, errors.INVALID_REQUEST, "Empty batch"))
            return
        if len(messages) > self.max_batch_size:  # refused whole: nothing in it runs
            await send_json(send, 400, jsonrpc.error(None, errors.INVALID_REQUEST, self._too_big))
            return
        if b"mcp-session-id" not in headers and is_modern(headers, payload):
            await self.modern(scope, receive, send, payload)  # the 2026-07-28 wire (modern_post.py)
            return

        out_headers: list[tuple[bytes, bytes]] = []
        session_header = headers.get(b"mcp-session-id")
        session = None
        raw_key = api_key_from(headers)
        if session_header is not None:
            # Another credential than the one the session is bound to: as if there were no such session.
            session = self.sessions.find(session_header.decode("latin-1"), raw_key)
            if session is None:
                await send_json(send, 404, jsonrpc.error(None, errors.INVALID_REQUEST, "Session not found"))
                return
            out_headers.append((b"mcp-session-id", session_header))
        refusal = version_refusal(headers.get(b"mcp-protocol-version"), messages) or batch_refusal(
            payload, session.protocol_version if session is not None else headers.get(b"mcp-protocol-version")
        )
        if refusal is not None:
            await send_json(send, 400, refusal)
            return

        client = scope.get("client")
        if session_header is None and isinstance(payload, dict) and payload.get("method") == "initialize":
            wait = self.session_rate.retry_after(
                client_ip(client[0] if client else None, _text(headers.get(b"x-forwarded-for")), self.trusted_proxies)
            )
            if wait is not None:
                await send_json(send, 429, _rate_error(payload, wait), [(b"retry-after", str(wait).encode())])
                return
        accept = headers.get(b"accept", b"")
        ctx = CallContext(
            raw_key,
            scope.get("paygate.request_id", ""),
            client=ClientFacts(client[0] if client else None, headers.get(b"x-forwarded-for"), headers),
            session_id=session.id if session is not None else None,
        )
        # The answer turns into an SSE stream if the server has something to say first (channel.py).
        channel = PostChannel(
            send,
            SSE in accept,
            lambda: [*out_headers, *billing_headers(ctx)],
            session.log if session is not None else None,
            session is not None and session.protocol_version >= PRIMING_VERSION,
        )
        ctx.origin = Origin(session, channel, receive)
        responses: list[Any] = []
        batch = isinstance(payload, list)
        size = 0  # a batch's answers so far, in bytes (max_batch_response_bytes)
        try:
            for message in messages:
                if size >= self.max_batch_response_bytes:
                    _not_run(message, responses)
                    continue
                invalid = jsonrpc.validate_request(message)
                if invalid is not None:
                    if not (batch and invalid["error"]["message"] == jsonrpc.NEEDS_ID):
                        responses.append(invalid)  # (a request sent as a notification, in a batch: no answer)
                    continue
                response = await self.dispatcher.handle(message, ctx)
                if (
                    response is not None
                    and "result" in response
                    and message.get("method") == "initialize"
                    and session_header is None
                ):
                    response = self._open_session(message, response, raw_key, out_headers)
                if response is not None:
                    responses.append(response)
                    if batch:
                        size += len(orjson.dumps(response))
        finally:
            # ctx → origin → channel → its header source → ctx is a cycle: left for the garbage
            # collector, every request's objects would cost ~20 µs more (measured, bench/inproc.py).
            ctx.origin = None

        if ctx.cancelled:  # "Receivers of cancellation notifications SHOULD NOT send a response"
            responses = [r for r in responses if r.get("id") not in ctx.cancelled]
        result: Any = (responses if isinstance(payload, list) else responses[0]) if responses else None
        if await channel.finish_if_streaming(result):
            return
        out_headers.extend(answer_headers(self.dispatcher, ctx))
        if result is None:
            await send_bytes(send, 202, b"", out_headers)
            return
        if prefers_sse(accept):
            body_out = b"event: message\ndata: " + orjson.dumps(result) + b"\n\n"
            await send_bytes(
                send,
                200,
                body_out,
                [(b"content-type", SSE), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"), *out_headers],
            )
            return
        status = 400 if not isinstance(payload, list) and _is_protocol_error(result) else 200
        if self.scope_challenge is not None and not batch and (tool := _scope_refused(result)) is not None:
            # the MCP authorization spec's step-up: 403 and the scope that would do (one call, not a batch)
            status = 403
            out_headers.append((b"www-authenticate", self.scope_challenge(scope.get("scheme", "http"), headers, tool)))
        await send_bytes(send, status, orjson.dumps(result), [(b"content-type", JSON), *out_headers])

    @property
    def _too_big(self) -> str:
        return f"Batch of more than {self.max_batch_size} messages; none was run"

    def _open_session(
        self, message: Any, response: Any, raw_key: str | None, out_headers: list[tuple[bytes, bytes]]
    ) -> Any:
        """The session an `initialize` opens (bound to its key, if valid), or the error in its answer's place."""
        created = self.sessions.create(response["result"]["protocolVersion"], raw_key)
        if created is None:  # maxAnonymousSessions = 0
            return denial_error(message.get("id"), "missing_api_key", "an API key is needed to open a session", {})
        created.capabilities = _declared_capabilities(message)
        out_headers.append((b"mcp-session-id", created.id.encode()))
        return response

    # GET: a server-to-client stream -----------------------------------------
    async def _get(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = header_map(scope)
        if SSE not in headers.get(b"accept", b""):
            await send_json(
                send, 406, jsonrpc.error(None, errors.INVALID_REQUEST, "GET /mcp needs Accept: text/event-stream")
            )
            return
        raw = headers.get(b"mcp-session-id")
        if raw is None:
            await send_json(send, 400, jsonrpc.error(None, errors.INVALID_REQUEST, "Mcp-Session-Id required"))
            return
        session = self.sessions.find(raw.decode("latin-1"), api_key_from(headers))
        if session is None:
            await send_json(send, 404, jsonrpc.error(None, errors.INVALID_REQUEST, "Session not found"))
            return
        refusal = version_refusal(headers.get(b"mcp-protocol-version"), [])
        if refusal is not None:
            await send_json(send, 400, refusal)
            return
        if session.gets >= self.sessions.max_streams_per_session:  # resumptions (Last-Event-ID) count too
            await send_json(send, 429, jsonrpc.error(None, errors.INVALID_REQUEST, "Too many streams"))
            return
        await _serve(session, headers.get(b"last-event-id"), receive, send)

    # DELETE ------------------------------------------------------------------
    async def _delete(self, scope: Scope, send: Send) -> None:
        headers = header_map(scope)
        raw = headers.get(b"mcp-session-id")
        if raw is None:
            await send_json(send, 400, jsonrpc.error(None, errors.INVALID_REQUEST, "Mcp-Session-Id required"))
            return
        session = self.sessions.find(raw.decode("latin-1"), api_key_from(headers))
        if session is None or not self.sessions.delete(session.id):
            await send_json(send, 404, jsonrpc.error(None, errors.INVALID_REQUEST, "Session not found"))
            return
        await send_json(send, 200, {"message": "Session terminated"})


async def _serve(session: Session, last_event_id: bytes | None, receive: Receive, send: Send) -> None:
    session.gets += 1
    try:
        await serve_stream(session, last_event_id, receive, send)
    finally:
        session.gets -= 1


def _not_run(message: Any, responses: list[Any]) -> None:
    """A batch entry after its answers reached max_batch_response_bytes: not run (nothing charged);
    a request gets a short error, a notification or a client's answer nothing."""
    if isinstance(message, dict) and "method" in message and "id" in message:
        msg_id = message["id"]
        ok = isinstance(msg_id, str | int) and not isinstance(msg_id, bool)
        responses.append(
            jsonrpc.error(msg_id if ok else None, errors.INVALID_REQUEST, "Batch response too large; not run")
        )


def _rate_error(message: Any, wait: int) -> dict[str, Any]:
    msg_id = message.get("id") if isinstance(message, dict) else None
    return jsonrpc.error(
        msg_id if isinstance(msg_id, str | int) else None,
        errors.INVALID_REQUEST,
        SESSION_RATE_MESSAGE,
        {"reason": "session_rate_limited", "retryAfterSeconds": wait},
    )


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def _is_protocol_error(response: Any) -> bool:
    err = response.get("error") if isinstance(response, dict) else None
    return isinstance(err, dict) and err.get("code") in (errors.PARSE_ERROR, errors.INVALID_REQUEST)


def _declared_capabilities(message: Any) -> dict[str, Any]:
    params = message.get("params")
    capabilities = params.get("capabilities") if isinstance(params, dict) else None
    return capabilities if isinstance(capabilities, dict) else {}


def _scope_refused(result: Any) -> str | None:
    """The tool of a call refused for the token's scopes (`insufficient_scope`), else None."""
    error = result.get("error") if isinstance(result, dict) else None
    data = error.get("data") if isinstance(error, dict) else None
    if isinstance(data, dict) and data.get("reason") == "insufficient_scope" and isinstance(data.get("tool"), str):
        return str(data["tool"])
    return None
