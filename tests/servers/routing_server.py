"""A small Streamable-HTTP MCP server (raw ASGI, JSON answers) for the canary and mirror tests: it says
who answered, fails or hangs on demand, and records every tools/call it receives.

Tools: `echo {text}` answers `<name>:<text>`, `add {a, b}`. Modes (POST /control {"mode": …}):
`ok`, `fail` (every tools/call gets a JSON-RPC error), `hang` (tools/call never answers). GET /calls:
the tools/call params received, as JSON.

In a thread (tests/api): `with routing_server("canary") as server: server.url`.
As a process (tests/e2e): python -m tests.servers.routing_server PORT NAME [MODE]
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TOOLS = [
    {
        "name": "echo",
        "description": "Return the text, prefixed with the server's name",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
    {
        "name": "add",
        "description": "Add two integers",
        "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
    },
]


class RoutingServer:
    def __init__(self, name: str, mode: str = "ok", sock: socket.socket | None = None) -> None:
        self.name = name
        self.mode = mode
        self.calls: list[dict[str, Any]] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None
        if sock is None:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
        self._sock = sock

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/mcp"

    def _config(self) -> Any:
        import uvicorn

        return uvicorn.Config(self, log_level="warning", lifespan="off", access_log=False)

    def start(self) -> None:
        import uvicorn

        from tests.support import wait_until

        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        wait_until(lambda: bool(self._server.started), 10, f"the {self.name} server to start")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # a hanging call must not hold the test up
            self._thread.join(10)
        self._sock.close()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if path == "/calls":
            await _respond(send, 200, self.calls)
            return
        if path == "/control" and method == "POST":
            self.mode = json.loads(body)["mode"]
            await _respond(send, 200, {"mode": self.mode})
            return
        if method != "POST":
            await _respond(send, 200 if method == "DELETE" else 405, None)
            return
        payload = json.loads(body)
        msg_id, rpc = payload.get("id"), payload.get("method")
        if msg_id is None:  # a notification
            await _respond(send, 202, None)
            return
        params = payload.get("params") or {}
        if rpc == "initialize":
            result: Any = {
                "protocolVersion": params.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": self.name, "version": "1"},
            }
        elif rpc == "tools/list":
            result = {"tools": TOOLS}
        elif rpc == "tools/call":
            self.calls.append(params)
            if self.mode == "hang":
                try:
                    await asyncio.Event().wait()  # until the connection goes, or the server stops
                except asyncio.CancelledError:
                    return
            if self.mode == "fail":
                error = {"code": -32603, "message": f"{self.name} fails on purpose"}
                await _respond(send, 200, {"jsonrpc": "2.0", "id": msg_id, "error": error})
                return
            args = params.get("arguments") or {}
            if params.get("name") == "add":
                text = str(int(args.get("a", 0)) + int(args.get("b", 0)))
            else:
                text = f"{self.name}:{args.get('text', '')}"
            result = {"content": [{"type": "text", "text": text}]}
        else:
            result = {}
        await _respond(send, 200, {"jsonrpc": "2.0", "id": msg_id, "result": result})


async def _respond(send: Any, status: int, payload: Any) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json")] if payload is not None else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def routing_server(name: str, mode: str = "ok") -> Iterator[RoutingServer]:
    server = RoutingServer(name, mode)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def main() -> None:
    import uvicorn

    port, name = int(sys.argv[1]), sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "ok"
    config = uvicorn.Config(RoutingServer(name, mode), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
