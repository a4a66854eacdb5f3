"""A stdio MCP server that fails on demand and hangs on demand (tests of the circuit breaker, retries and
timeouts through the real CLI: tests/e2e/test_traffic_breaker.py).

Run: python tests/servers/flaky_server.py

Tools:
* `fail_next {count, code}`: the next `count` calls to `work` answer a JSON-RPC error `code` (default
  -32000) instead of a result;
* `work`: `worked <n>` (n: the calls to `work` so far, failed ones included), or the failure asked for;
* `hang`: never answers; a `notifications/cancelled` for it is recorded;
* `stats`: `{"work": calls, "hang": calls, "cancelled": [request ids], "failuresLeft": n}` as JSON text.
Each request runs on its own thread, so a hanging call holds nothing else up.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

OBJECT = {"type": "object"}
TOOLS = [
    {"name": "work", "inputSchema": OBJECT},
    {"name": "hang", "inputSchema": OBJECT},
    {"name": "stats", "inputSchema": OBJECT},
    {
        "name": "fail_next",
        "inputSchema": {"type": "object", "properties": {"count": {"type": "integer"}, "code": {"type": "integer"}}},
    },
]

write_lock = threading.Lock()
state_lock = threading.Lock()
calls = {"work": 0, "hang": 0}
failures = {"left": 0, "code": -32000}
cancelled: list[Any] = []
hanging: dict[Any, threading.Event] = {}


def send(message: dict[str, Any]) -> None:
    with write_lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def text(value: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": value}]}


def call(msg_id: Any, name: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """The answer to one tools/call: a result, an error (a dict with `error`), or None (no answer)."""
    with state_lock:
        if name == "fail_next":
            failures["left"] = int(args.get("count", 1))
            failures["code"] = int(args.get("code", -32000))
            return {"result": text("ok")}
        if name == "stats":
            stats = {**calls, "cancelled": list(cancelled), "failuresLeft": failures["left"]}
            return {"result": text(json.dumps(stats))}
        if name == "work":
            calls["work"] += 1
            if failures["left"] > 0:
                failures["left"] -= 1
                return {"error": {"code": failures["code"], "message": "work is failing (on purpose)"}}
            return {"result": text(f"worked {calls['work']}")}
        if name == "hang":
            calls["hang"] += 1
            event = hanging[msg_id] = threading.Event()
    if name == "hang":
        event.wait(3600)
        return None  # cancelled (or an hour passed): a cancelled request gets no answer
    return {"error": {"code": -32602, "message": f"Unknown tool: {name}"}}


def handle(message: dict[str, Any]) -> None:
    method, msg_id = message.get("method"), message.get("id")
    params = message.get("params") or {}
    if method == "notifications/cancelled":
        with state_lock:
            request_id = params.get("requestId")
            cancelled.append(request_id)
            event = hanging.pop(request_id, None)
        if event is not None:
            event.set()
        return
    if msg_id is None:
        return
    if method == "initialize":
        answer: dict[str, Any] | None = {
            "result": {
                "protocolVersion": params.get("protocolVersion"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "flaky", "version": "1"},
            }
        }
    elif method == "tools/list":
        answer = {"result": {"tools": TOOLS}}
    elif method == "ping":
        answer = {"result": {}}
    elif method == "tools/call":
        answer = call(msg_id, str(params.get("name")), params.get("arguments") or {})
    else:
        answer = {"error": {"code": -32601, "message": "Method not found"}}
    if answer is not None:
        send({"jsonrpc": "2.0", "id": msg_id, **answer})


def main() -> None:
    for line in sys.stdin:
        if line.strip():
            threading.Thread(target=handle, args=(json.loads(line),), daemon=True).start()


if __name__ == "__main__":
    main()
