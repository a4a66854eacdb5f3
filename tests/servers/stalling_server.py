"""A stdio MCP server that stops reading its stdin once its handshake is done (tests of item 8).

Run: python tests/servers/stalling_server.py [ONCE_FILE]

It answers `initialize` and `tools/list` (one tool, `add`), then never reads again: the gateway's
writes fill the pipe. With ONCE_FILE, only the process that finds no such file stalls (it creates
it); a restarted one serves `add` normally, so a test can watch the gateway recover.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

TOOLS = [{"name": "add", "inputSchema": {"type": "object"}}]


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def answer(message: dict[str, Any]) -> dict[str, Any] | None:
    method, msg_id = message.get("method"), message.get("id")
    if msg_id is None:
        return None
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "stalling", "version": "1"},
        }
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        args = message["params"].get("arguments") or {}
        total = int(args.get("a", 0)) + int(args.get("b", 0))
        result = {"content": [{"type": "text", "text": str(total)}]}
    else:
        return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32601, "message": "Method not found"}}
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def main() -> None:
    once = sys.argv[1] if len(sys.argv) > 1 else None
    stall = once is None or not os.path.exists(once)
    if once is not None and stall:
        open(once, "w").close()
    for line in sys.stdin:
        message = json.loads(line)
        reply = answer(message)
        if reply is not None:
            send(reply)
        if stall and message.get("method") == "tools/list":
            while True:  # stop reading: what the gateway writes now stays in the pipe
                time.sleep(3600)


if __name__ == "__main__":
    main()
