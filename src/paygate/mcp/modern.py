"""The 2026-07-28 revision's wire, as clients speak it to the gateway.

A modern request is one self-contained POST: no `initialize`, no session. Its version, the
client's capabilities and info ride in `params._meta` (`io.modelcontextprotocol/…` keys), and the
headers repeat what routes it: `MCP-Protocol-Version`, `Mcp-Method`, and `Mcp-Name` for the
methods that name something. Headers and body must agree (else -32020, HTTP 400), so a proxy
routing on the headers and the server reading the body see the same request.

The backend behind the gateway keeps its one handshake-era session: the envelope is taken off
before a request is forwarded, and results get the fields the modern schema requires. The server's
own questions (sampling, elicitation, roots) cannot be sent to a modern client, which has no
channel for them; they come back as an "input required" answer instead (input_required.py).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from paygate.core import errors
from paygate.mcp import jsonrpc

MODERN_VERSION = "2026-07-28"
META_PREFIX = "io.modelcontextprotocol/"
META_VERSION = META_PREFIX + "protocolVersion"
META_CAPABILITIES = META_PREFIX + "clientCapabilities"
META_SERVER_INFO = META_PREFIX + "serverInfo"
HEADER_MISMATCH = -32020
UNSUPPORTED_PROTOCOL_VERSION = -32022
NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
CACHEABLE = frozenset({"tools/list", "resources/list", "resources/templates/list", "prompts/list"})
# The revision's client requests (no lifecycle, ping, logging or subscribe pair), and our batch
# extension. `subscriptions/listen` is not offered: list changes reach modern clients by re-listing.
METHODS = frozenset(
    {
        "tools/list",
        "tools/call",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "completion/complete",
        "tools/call_batch",
    }
)
MRTR_PARAMS = ("inputResponses", "requestState")  # a retry's own fields: never sent upstream
_B64 = re.compile(r"=\?base64\?([A-Za-z0-9+/]*={0,2})\?=")


def is_modern(headers: Mapping[bytes, bytes], payload: Any) -> bool:
    """A request of the 2026-07-28 wire: by its header, or by its envelope when the header is missing.
    An `initialize` is the handshake era's, whatever header a falling-back client left on it."""
    if isinstance(payload, dict) and payload.get("method") == "initialize":
        return False
    version = headers.get(b"mcp-protocol-version")
    if version is not None:
        return version.decode("latin-1").strip() == MODERN_VERSION
    meta = _meta_of(payload)
    return meta is not None and meta.get(META_VERSION) == MODERN_VERSION


def envelope_refusal(message: Any, headers: Mapping[bytes, bytes]) -> dict[str, Any] | None:
    """The error for a modern request whose envelope or routing headers are wrong, else None."""
    msg_id = message.get("id") if isinstance(message, dict) else None
    meta = _meta_of(message)
    if meta is None or META_VERSION not in meta or META_CAPABILITIES not in meta:
        return jsonrpc.error(
            msg_id,
            errors.INVALID_PARAMS,
            f"params._meta must carry {META_VERSION!r} and {META_CAPABILITIES!r} (protocol {MODERN_VERSION})",
        )
    version = meta[META_VERSION]
    if _header(headers, b"mcp-protocol-version") != version:
        return jsonrpc.error(msg_id, HEADER_MISMATCH, "MCP-Protocol-Version header does not match params._meta")
    method = message.get("method")
    if _header(headers, b"mcp-method") != method:
        return jsonrpc.error(msg_id, HEADER_MISMATCH, "Mcp-Method header does not match the request's method")
    name_key = NAME_BEARING.get(method)
    body_name = message["params"].get(name_key) if name_key else None
    if body_name is not None and decode_header_value(_header(headers, b"mcp-name")) != body_name:
        return jsonrpc.error(msg_id, HEADER_MISMATCH, f"Mcp-Name header does not match params.{name_key}")
    if version != MODERN_VERSION:
        return jsonrpc.error(
            msg_id,
            UNSUPPORTED_PROTOCOL_VERSION,
            f"Unsupported protocol version: {version!s:.50}",
            {"supported": supported_versions(), "requested": str(version)[:50]},
        )
    return None


def supported_versions() -> list[str]:
    return [*jsonrpc.SUPPORTED_VERSIONS, MODERN_VERSION]


def for_backend(message: dict[str, Any]) -> dict[str, Any]:
    """The request as the handshake-era backend session takes it: no envelope, no retry fields."""
    params = message.get("params")
    if not isinstance(params, dict):
        return message
    meta = params.get("_meta")
    kept = {k: v for k, v in params.items() if k not in MRTR_PARAMS and k != "_meta"}
    if isinstance(meta, dict):
        rest = {k: v for k, v in meta.items() if not k.startswith(META_PREFIX)}
        if rest:
            kept["_meta"] = rest
    return {**message, "params": kept}


def discover_result(init_result: Mapping[str, Any] | None) -> dict[str, Any]:
    """`server/discover`: every version the gateway speaks, and the backend's capabilities."""
    upstream = dict(init_result or {})
    result: dict[str, Any] = {
        "supportedVersions": supported_versions(),
        "capabilities": upstream.get("capabilities") or {},
        "resultType": "complete",
        "ttlMs": 0,
        "cacheScope": "private",
        "_meta": {META_SERVER_INFO: upstream.get("serverInfo") or {"name": "paygate-mcp", "version": "0"}},
    }
    if upstream.get("instructions"):
        result["instructions"] = upstream["instructions"]
    return result


def completed(method: str, response: dict[str, Any]) -> dict[str, Any]:
    """A result with the fields the 2026-07-28 schema requires (older servers do not send them).
    List prices are per key, so a list is never for shared caches."""
    result = response.get("result")
    if isinstance(result, dict):
        result.setdefault("resultType", "complete")
        if method in CACHEABLE:
            result.setdefault("ttlMs", 0)
            result.setdefault("cacheScope", "private")
    return response


def decode_header_value(value: str | None) -> str | None:
    """A header value as sent: verbatim, or UTF-8 inside the `=?base64?…?=` sentinel."""
    if value is None:
        return None
    match = _B64.fullmatch(value)
    if match is None:
        return value
    try:
        return base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _header(headers: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1").strip() if value is not None else None


def _meta_of(message: Any) -> dict[str, Any] | None:
    params = message.get("params") if isinstance(message, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta if isinstance(meta, dict) else None
