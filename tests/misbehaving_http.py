"""A Streamable HTTP MCP server that misbehaves on purpose (tests of issue 11, items 8 and 9).

asyncio on 127.0.0.1, port 0, on an event loop of its own in a background thread; no process.
It answers the handshake and `add` properly; otherwise, by tool name:

    hang         accepts the call and never answers
    garbage      200 application/json with the body `{not json`
    sse_garbage  200 text/event-stream with one event whose data is `{not json`, then keeps the stream open

and it never answers a `notifications/cancelled` either (it records each one it receives).
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import Future
from typing import Any

TOOLS = [{"name": name, "inputSchema": {"type": "object"}} for name in ("add", "hang", "garbage", "sse_garbage")]


class MisbehavingServer:
    def __init__(self) -> None:
        self.port = 0
        self.cancelled: list[Any] = []  # the requestId of each notifications/cancelled received
        self.calls: list[str] = []  # the tool of each tools/call received
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="misbehaving-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> MisbehavingServer:
        self._thread.start()
        future: Future[None] = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> MisbehavingServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method = head.split(b" ", 1)[0]
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                if method != b"POST":
                    writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    continue
                if not await self._answer(json.loads(body), writer):
                    await reader.read()  # never answered: hold the connection until the peer closes it
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, message: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        """Write the answer; False when there is none to write (the call hangs)."""
        method, msg_id = message.get("method"), message.get("id")
        if method == "notifications/cancelled":
            self.cancelled.append(message["params"]["requestId"])
            return False
        if msg_id is None:
            writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
            return True
        if method == "initialize":
            result: dict[str, Any] = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "misbehaving", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": TOOLS}
        else:
            tool = message["params"]["name"]
            self.calls.append(tool)
            if tool == "hang":
                return False
            if tool == "garbage":
                _write(writer, "application/json", b"{not json")
                return True
            if tool == "sse_garbage":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: {not json\n\n")
                return False
            args = message["params"].get("arguments") or {}
            result = {"content": [{"type": "text", "text": str(args.get("a", 0) + args.get("b", 0))}]}
        _write(writer, "application/json", json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}).encode())
        return True


def _write(writer: asyncio.StreamWriter, content_type: str, body: bytes) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
