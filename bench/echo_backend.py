"""A minimal, deliberately cheap MCP echo server for the benchmark.

    python bench/echo_backend.py --stdio            JSON-RPC lines on stdin/stdout
    python bench/echo_backend.py --http PORT        Streamable HTTP (JSON answers) on 127.0.0.1:PORT/mcp

It answers initialize, notifications/*, ping, tools/list and tools/call (one
tool, `echo`, which returns its arguments as text). Called directly it is the
"physical limit" the gateway is measured against, so it avoids every
framework: the HTTP side is a raw asyncio protocol (on uvloop when present)
with a hand-rolled HTTP/1.1 keep-alive parser, the stdio side reads and
writes whole buffers with os.read/os.write so a burst of requests costs one
system call each way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import Any

import orjson

PROTOCOL_VERSION = "2025-06-18"
SESSION_ID = b"bench-session-1"
_TOOLS = {
    "tools": [
        {
            "name": "echo",
            "description": "Echo the arguments back",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
        }
    ]
}
_INIT = {
    "protocolVersion": PROTOCOL_VERSION,
    "capabilities": {"tools": {}},
    "serverInfo": {"name": "bench-echo", "version": "1"},
}


def answer(message: Any) -> bytes | None:
    """The serialized JSON-RPC answer to one message, or None for notifications/responses."""
    if not isinstance(message, dict) or "id" not in message or "method" not in message:
        return None
    method = message["method"]
    result: Any
    if method == "tools/call":
        params = message.get("params") or {}
        text = orjson.dumps(params.get("arguments")).decode()
        result = {"content": [{"type": "text", "text": text}]}
    elif method == "tools/list":
        result = _TOOLS
    elif method == "initialize":
        result = _INIT
    elif method == "ping":
        result = {}
    else:
        return orjson.dumps(
            {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": f"Method not found: {method}"}}
        )
    return orjson.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})


# stdio ------------------------------------------------------------------------
def serve_stdio() -> None:
    pending = b""
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                reply = answer(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
            if reply is not None:
                out.append(reply)
        if out:
            data = b"\n".join(out) + b"\n"
            while data:  # a pipe may take a large burst in pieces
                data = data[os.write(1, data) :]


# HTTP -------------------------------------------------------------------------
def _response(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )


_ACCEPTED = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"
_NOT_ALLOWED = b"HTTP/1.1 405 Method Not Allowed\r\nallow: POST, DELETE\r\ncontent-length: 0\r\n\r\n"
_DELETED = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
_LENGTH_REQUIRED = b"HTTP/1.1 411 Length Required\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


class HttpEcho(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining; bodies need Content-Length (no chunked)."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        out: list[bytes] = []
        close = False
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            elif b"\r\ntransfer-encoding:" in head:
                out.append(_LENGTH_REQUIRED)
                close = True
                buf = b""
                break
            if len(buf) < end + 4 + length:
                break
            body = buf[end + 4 : end + 4 + length]
            buf = buf[end + 4 + length :]
            out.append(self.handle(head, body))
            if b"\r\nconnection: close" in head:
                close = True
                break
        self.buf = buf
        assert self.transport is not None
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        if close:
            self.transport.close()

    @staticmethod
    def handle(head: bytes, body: bytes) -> bytes:
        if head.startswith(b"delete "):
            return _DELETED
        if not head.startswith(b"post "):
            return _NOT_ALLOWED
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _response(
                b"400 Bad Request", b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}'
            )
        reply = answer(message)
        if reply is None:
            return _ACCEPTED
        extra = b"mcp-session-id: " + SESSION_ID + b"\r\n" if message.get("method") == "initialize" else b""
        return _response(b"200 OK", reply, extra)


async def serve_http(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HttpEcho, "127.0.0.1", port, backlog=2048, reuse_address=True)
    sock = server.sockets[0]
    print(f"listening {sock.getsockname()[1]}", flush=True)  # run.py reads the port from here
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stdio", action="store_true")
    mode.add_argument("--http", type=int, metavar="PORT", help="0 picks a free port (printed on stdout)")
    args = parser.parse_args()
    if args.stdio:
        serve_stdio()
        return
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve_http(args.http))


if __name__ == "__main__":
    sys.exit(main())
