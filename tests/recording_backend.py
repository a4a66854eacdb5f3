"""A recording Streamable-HTTP MCP backend for tests that must see what the gateway sends upstream."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.support import wait_until


@dataclass
class Recorded:
    method: str
    headers: dict[str, str]
    body: Any


class RecordingBackend:
    """A tiny raw-ASGI MCP server (Streamable HTTP) that records every request it receives.

    It answers `initialize` (JSON, with an `Mcp-Session-Id`), `tools/list` and `tools/call` as SSE
    streams (the call's stream carries a log notification before the answer), and — like a
    2026-07-28 server would — answers `server/discover` with a modern result. `DELETE` is recorded.
    Its tool `headers` returns the names of the HTTP headers the backend saw on that call.
    """

    TOOLS = [
        {
            "name": "headers",
            "description": "The request header names the backend saw",
            "inputSchema": {"type": "object", "properties": {}},
        },
        {
            "name": "shout",
            "description": "Upper-case the text",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
        },
    ]

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.session_id = "rec-" + os.urandom(8).hex()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/mcp"

    def methods(self) -> list[str]:
        return [r.body.get("method", "") if isinstance(r.body, dict) else r.method for r in self.requests]

    def start(self) -> None:
        import uvicorn

        config = uvicorn.Config(self, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        wait_until(lambda: bool(self._server.started), 10, "the recording backend to start")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._sock.close()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        payload = json.loads(body) if body else None
        self.requests.append(Recorded(scope["method"], headers, payload))
        if scope["method"] != "POST":
            await _respond(send, 200 if scope["method"] == "DELETE" else 405, b"", [])
            return
        msg_id, method = payload.get("id"), payload.get("method")
        if method is None or msg_id is None:  # a notification or a client's answer
            await _respond(send, 202, b"", [])
            return
        if method == "initialize":
            result = {
                "protocolVersion": payload["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "recording-backend", "version": "1"},
            }
            await _respond(
                send,
                200,
                json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}).encode(),
                [(b"content-type", b"application/json"), (b"mcp-session-id", self.session_id.encode())],
            )
            return
        if headers.get("mcp-session-id") != self.session_id:
            await _respond(
                send,
                400,
                b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"no session"}}',
                [(b"content-type", b"application/json")],
            )
            return
        events: list[dict[str, Any]] = []
        if method == "server/discover":
            result = {
                "supportedVersions": ["2026-07-28"],
                "capabilities": {"tools": {}},
                "resultType": "complete",
                "ttlMs": 0,
                "cacheScope": "private",
            }
        elif method == "tools/list":
            result = {"tools": self.TOOLS}
        elif method == "tools/call":
            name, args = payload["params"]["name"], payload["params"].get("arguments") or {}
            text = ",".join(sorted(headers)) if name == "headers" else str(args.get("text", "")).upper()
            result = {"content": [{"type": "text", "text": text}]}
            events.append(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/message",
                    "params": {"level": "info", "data": f"calling {name}"},
                }
            )
        else:
            result = {}
        events.append({"jsonrpc": "2.0", "id": msg_id, "result": result})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )
        for event in events:  # one chunk per event, so the gateway must parse a real stream
            chunk = b"event: message\ndata: " + json.dumps(event).encode() + b"\n\n"
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def recording_backend() -> Iterator[RecordingBackend]:
    backend = RecordingBackend()
    try:
        backend.start()
        yield backend
    finally:
        backend.stop()
