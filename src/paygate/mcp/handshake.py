"""The `initialize` result the gateway answers itself: the backend's handshake, the version the client
asked for when the gateway speaks it, and the gateway's own capabilities added (tasks: task_calls.py)."""

from __future__ import annotations

from typing import Any

from paygate.mcp import jsonrpc

# MCP 2025-11-25: the gateway runs task-augmented tools/call itself, and lists and cancels tasks.
TASKS_CAPABILITY: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}


def initialize_result(upstream_init: dict[str, Any] | None, params: Any, tasks: bool) -> dict[str, Any]:
    upstream = dict(upstream_init or {})
    asked = params.get("protocolVersion") if isinstance(params, dict) else None
    fallback = upstream.get("protocolVersion") or jsonrpc.LATEST_HANDSHAKE_VERSION
    upstream["protocolVersion"] = asked if asked in jsonrpc.SUPPORTED_VERSIONS else fallback
    capabilities = dict(upstream.get("capabilities") or {})
    if tasks:  # the gateway's, whatever the server says (it never sees a task: the gateway runs them)
        capabilities["tasks"] = TASKS_CAPABILITY
    upstream["capabilities"] = capabilities
    upstream.setdefault("serverInfo", {"name": "paygate-mcp", "version": "0"})
    return upstream
