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


NEEDS_ID = "Invalid Request: requests need an id"


def is_notification_method(method: str) -> bool:
    return method.startswith("notifications/") or method == "initialized"


def validate_request(m: Any) -> Message | None:
    """An error response for a structurally invalid message, else None. Beyond JSON-RPC, as MCP
    says: an id is never null, a notification method never has one, and a request always has one
    (a `tools/call` sent as a notification would otherwise run unanswered, unpaid)."""
    if not isinstance(m, dict) or m.get("jsonrpc") != JSONRPC:
        return error(m.get("id") if isinstance(m, dict) else None, errors.INVALID_REQUEST, "Invalid Request")
    if "method" in m:
        if not isinstance(m["method"], str) or not m["method"]:
            return error(m.get("id"), errors.INVALID_REQUEST, "Invalid Request: method must be a string")
        if "params" in m and not isinstance(m["params"], dict | list):
            return error(m.get("id"), errors.INVALID_REQUEST, "Invalid Request: params must be structured")
        if "id" not in m:  # a notification: only notification methods may be one (never run unanswered)
            return None if is_notification_method(m["method"]) else error(None, errors.INVALID_REQUEST, NEEDS_ID)
        msg_id = m["id"]
        if not isinstance(msg_id, str | int) or isinstance(msg_id, bool):  # MCP: never null
            return error(None, errors.INVALID_REQUEST, "Invalid Request: id must be a string or integer")
        if is_notification_method(m["method"]):
            return error(msg_id, errors.INVALID_REQUEST, "Invalid Request: a notification takes no id")
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


MAX_PARAMS_DEPTH = 64  # levels of nesting a request's params may have (orjson writes at most 254)
TOO_DEEP = f"params nested too deeply (over {MAX_PARAMS_DEPTH} levels)"


def too_deep(value: Any, levels: int = MAX_PARAMS_DEPTH) -> bool:
    """Whether `value` nests objects/arrays more than `levels` deep (only containers are visited)."""
    if levels <= 0:
        return True
    levels -= 1
    for item in value.values() if type(value) is dict else value:
        if (type(item) is dict or type(item) is list) and too_deep(item, levels):
            return True
    return False
