"""Checks on /mcp's HTTP headers that come before any JSON-RPC: Origin and MCP-Protocol-Version.

**Origin** (DNS-rebinding protection). A web page can make a browser talk to a gateway on
localhost or a private network, and the browser always names the page in `Origin`. So a request
carrying an `Origin` is refused (403) unless that origin is allowed: by default only loopback
pages (`http://localhost:…`, `http://127.0.0.1:…`, `http://[::1]:…`); `allowedOrigins` lists
more, or `*` for any. Agents and SDK clients send no `Origin` and are not affected.

**MCP-Protocol-Version.** Clients of 2025-06-18 and later name their version on every request
after `initialize`. A version the gateway does not speak is refused with 400 and, in the body,
the -32022 error of 2026-07-28 (`data.supported` lists ours), which tells a modern client to fall
back to the `initialize` handshake. No header means 2025-03-26, as the spec says. A supported
version other than the session's is served, as the SDK servers do (the conformance suite sends
2025-03-26 within sessions it negotiated at 2025-11-25).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from paygate.core import errors
from paygate.core.origins import origin_allowed
from paygate.mcp import jsonrpc

UNSUPPORTED_PROTOCOL_VERSION = -32022


def origin_refusal(origin: bytes | None, allowed: Collection[str]) -> dict[str, Any] | None:
    """None if a request with this `Origin` header may proceed, else the 403 body."""
    if origin is None:
        return None
    text = origin.decode("latin-1")
    if origin_allowed(text, allowed):
        return None
    return jsonrpc.error(
        None, errors.INVALID_REQUEST, f"Origin not allowed: {text.strip()[:200]}", {"reason": "origin_not_allowed"}
    )


def version_refusal(header: bytes | None, messages: list[Any]) -> dict[str, Any] | None:
    """None if the `MCP-Protocol-Version` header is acceptable for this POST, else the 400 body."""
    if header is None or any(isinstance(m, dict) and m.get("method") == "initialize" for m in messages):
        return None  # no header: 2025-03-26; and an initialize negotiates the version itself
    version = header.decode("latin-1").strip()
    if version not in jsonrpc.SUPPORTED_VERSIONS:
        return jsonrpc.error(
            None,
            UNSUPPORTED_PROTOCOL_VERSION,
            f"Unsupported MCP-Protocol-Version: {version[:50]}",
            {"supported": list(jsonrpc.SUPPORTED_VERSIONS), "requested": version[:50]},
        )
    return None


BATCHES_REMOVED = "2025-06-18"


def batch_refusal(payload: Any, version: str | bytes | None) -> dict[str, Any] | None:
    """A JSON-RPC batch where the protocol version forbids it: 2025-06-18 removed batching, and an
    `initialize` is never part of one. No version at all means 2025-03-26, which allows them."""
    if not isinstance(payload, list):
        return None
    if any(isinstance(m, dict) and m.get("method") == "initialize" for m in payload):
        return jsonrpc.error(None, errors.INVALID_REQUEST, "initialize must not be part of a JSON-RPC batch")
    if isinstance(version, bytes):
        version = version.decode("latin-1").strip()
    if version is not None and version >= BATCHES_REMOVED:
        return jsonrpc.error(None, errors.INVALID_REQUEST, f"JSON-RPC batches are not part of protocol {version}")
    return None
