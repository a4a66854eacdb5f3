"""Talking to a backend that speaks only the 2026-07-28 revision (it refuses `initialize`).

Such a server takes no handshake and keeps no session: every request carries the envelope in
`params._meta` (our version, capabilities and name), and over HTTP the routing headers too. The
gateway learns what the server is from `server/discover`. Its questions come back as
`input_required` results, which the dispatcher resolves with the client (relay.ask) and retries.
"""

from __future__ import annotations

import base64
from typing import Any

from paygate import __version__
from paygate.mcp.modern import (
    META_CAPABILITIES,
    META_SERVER_INFO,
    META_VERSION,
    MODERN_VERSION,
    NAME_BEARING,
    UNSUPPORTED_PROTOCOL_VERSION,
)

META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
CLIENT_INFO = {"name": "paygate-mcp", "version": __version__}


def speaks_only_modern(error: Any) -> bool:
    """An `initialize` refused because the server speaks only 2026-07-28."""
    if not isinstance(error, dict) or error.get("code") != UNSUPPORTED_PROTOCOL_VERSION:
        return False
    data = error.get("data")
    supported = data.get("supported") if isinstance(data, dict) else None
    return isinstance(supported, list) and MODERN_VERSION in supported


def stamp(params: Any, capabilities: dict[str, Any]) -> dict[str, Any]:
    """The request's params with our envelope in `_meta` (the caller's other `_meta` kept)."""
    out = dict(params) if isinstance(params, dict) else {}
    meta = out.get("_meta")
    out["_meta"] = {
        **(meta if isinstance(meta, dict) else {}),
        META_VERSION: MODERN_VERSION,
        META_CAPABILITIES: capabilities,
        META_CLIENT_INFO: CLIENT_INFO,
    }
    return out


def routing_headers(method: str, params: dict[str, Any]) -> dict[str, str]:
    """What a 2026-07-28 HTTP server checks against the body (ASCII names as they are; others encoded)."""
    headers = {"MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": method}
    key = NAME_BEARING.get(method)
    name = params.get(key) if key else None
    if isinstance(name, str):
        headers["Mcp-Name"] = name if name.isascii() and name.isprintable() else _encoded(name)
    return headers


def init_result_from(discovered: dict[str, Any]) -> dict[str, Any]:
    """What the rest of the gateway reads from a handshake, taken from a `server/discover` result."""
    meta = discovered.get("_meta")
    info = meta.get(META_SERVER_INFO) if isinstance(meta, dict) else None
    result: dict[str, Any] = {
        "protocolVersion": MODERN_VERSION,
        "capabilities": discovered.get("capabilities") or {},
        "serverInfo": info if isinstance(info, dict) else {"name": "unnamed", "version": "0"},
    }
    if discovered.get("instructions"):
        result["instructions"] = discovered["instructions"]
    return result


def _encoded(value: str) -> str:
    return "=?base64?" + base64.b64encode(value.encode()).decode() + "?="
