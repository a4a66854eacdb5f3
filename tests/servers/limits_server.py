"""A stdio MCP server whose calls run concurrently and last as long as the test says (the concurrency
limits' and priority queue's e2e tests, tests/e2e/test_traffic_concurrency.py).

Run: python tests/servers/limits_server.py

Tools: `sleep(seconds)` answers after that long; `hold(label)` answers once `release(label)` was called
(at once if it already was); `release(label)`; `started()` the labels of the `hold` calls in the order
they began, comma-separated. Plain JSON-RPC lines, every request in a task of its own.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

STRING = {"type": "string"}
TOOLS = [
    {"name": "sleep", "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number"}}}},
    {"name": "hold", "inputSchema": {"type": "object", "properties": {"label": STRING}}},
    {"name": "release", "inputSchema": {"type": "object", "properties": {"label": STRING}}},
    {"name": "started", "inputSchema": {"type": "object"}},
]
gates: dict[str, asyncio.Event] = {}
started: list[str] = []


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def gate(label: str) -> asyncio.Event:
    return gates.setdefault(label, asyncio.Event())


async def call(name: str, args: dict[str, Any]) -> str:
    if name == "sleep":
        await asyncio.sleep(float(args.get("seconds", 0)))
        return f"slept {args.get('seconds', 0)}"
    label = str(args.get("label", ""))
    if name == "hold":
        started.append(label)
        await gate(label).wait()
        return f"released {label}"
    if name == "release":
        gate(label).set()
        return f"release {label}"
    return ",".join(started)


async def answer(message: dict[str, Any]) -> None:
    method, msg_id, params = message.get("method"), message["id"], message.get("params") or {}
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "limits", "version": "1"},
        }
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "ping":
        result = {}
    elif method == "tools/call":
        text = await call(str(params.get("name")), params.get("arguments") or {})
        result = {"content": [{"type": "text", "text": text}], "isError": False}
    else:
        send({"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32601, "message": "Method not found"}})
        return
    send({"jsonrpc": "2.0", "id": msg_id, "result": result})


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    running: set[asyncio.Task[None]] = set()
    while line := await reader.readline():
        message = json.loads(line)
        if "id" in message and "method" in message:
            task = asyncio.create_task(answer(message))
            running.add(task)
            task.add_done_callback(running.discard)


if __name__ == "__main__":
    asyncio.run(main())
