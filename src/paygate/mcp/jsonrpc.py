"""Small JSON-RPC 2.0 helpers (dicts in, dicts out; orjson for bytes)."""

from __future__ import annotations

from typing import Any

import orjson

from paygate.core import errors

Message = dict[str, Any]
JSONRPC = "2.0"
LATEST_HANDSHAKE_VERSION = "2025-11-25"
SUPPORTED_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")


def error(msg_id: Any, code: int, message: str, data: Any = None) -> Message:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": JSONRPC, "id": msg_id, "error": err}


def result(msg_id: Any, value: Any) -> Message:
    return {"jsonrpc": JSONRPC, "id": msg_id, "result": value}


def dumps(message: Any) -> bytes:
    return orjson.dumps(message)


def validate_request(m: Any) -> Message | None:
    """An error response for a structurally invalid message, else None."""
    if not isinstance(m, dict) or m.get("jsonrpc") != JSONRPC:
        return error(m.get("id") if isinstance(m, dict) else None, errors.INVALID_REQUEST, "Invalid Request")
    if "method" in m:
        if not isinstance(m["method"], str) or not m["method"]:
            return error(m.get("id"), errors.INVALID_REQUEST, "Invalid Request: method must be a string")
        if "params" in m and not isinstance(m["params"], dict | list):
            return error(m.get("id"), errors.INVALID_REQUEST, "Invalid Request: params must be structured")
        msg_id = m.get("id")
        if (msg_id is not None and not isinstance(msg_id, str | int)) or isinstance(msg_id, bool):
            return error(None, errors.INVALID_REQUEST, "Invalid Request: id must be a string or integer")
        return None
    if "result" in m or "error" in m:
        return None
    return error(m.get("id"), errors.INVALID_REQUEST, "Invalid Request")


def is_failure(response: Message) -> bool:
    """A JSON-RPC error, or a tool result that reports `isError: true`."""
    if "error" in response:
        return True
    res = response.get("result")
    return isinstance(res, dict) and res.get("isError") is True
