"""What makes two tool calls "the same call" for the response cache and dedup: the tool and its
arguments in a canonical form (sorted keys, no whitespace), hashed. `_meta` and other params are not
part of it: a progress token does not change what the tool computes."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson


def call_digest(tool: str, params: dict[str, Any]) -> bytes | None:
    """SHA-256 of the tool name and its canonical arguments; None when the arguments cannot be written
    canonically (not an object, or an integer beyond 64 bits): such a call is never matched."""
    arguments = params.get("arguments")
    if arguments is None:
        arguments = {}
    elif not isinstance(arguments, dict):
        return None
    try:
        canonical = orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None
    return hashlib.sha256(tool.encode() + b"\x00" + canonical).digest()


def answered(reply: dict[str, Any]) -> bool:
    """A successful tool result: not a JSON-RPC error, not `isError: true`."""
    result = reply.get("result")
    return "error" not in reply and isinstance(result, dict) and result.get("isError") is not True
