"""HttpBackend (remote Streamable HTTP) on its lean path, against a scripted in-process MCP server:
timeouts, cancellation, a forgotten session, the body bound, dead pooled connections, SSE answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from paygate.http.h1 import H1Pool
from paygate.mcp.backends import http as http_backend
from paygate.mcp.backends.base import BackendTimeout, BackendUnavailable
from paygate.mcp.backends.http import HttpBackend


def reply(status: str, body: bytes, ctype: str = "application/json", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


class McpServer:
    """Streamable HTTP, JSON answers; what `tools/call` does depends on the tool's name."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.messages: list[dict[str, Any]] = []
        self.on_connection: dict[int, list[dict[str, Any]]] = {}  # the messages each connection brought
        self.connections = 0
        self.dropped: list[int] = []  # the connections the client closed, by number
        self.stalled_on: list[int] = []  # the connections a "hang" or "stall" call came on
        self.sessions = 0
        self.forget_session = False  # the next request in a session gets a 404
        self.gets = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.handlers: list[asyncio.Task[Any]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.writers.append(writer)
        self.handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
                length = int(head.split("content-length:")[1].split("\r\n")[0]) if "content-length:" in head else 0
                body = await reader.readexactly(length)
                if not head.startswith("post "):
                    self.gets += 1
                    writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    continue
                message = orjson.loads(body)
                self.messages.append(message)
                self.on_connection.setdefault(number, []).append(message)
                out = self.answer(head, message)
                if message.get("params", {}).get("name") in ("hang", "stall"):
                    self.stalled_on.append(number)
                if out:
                    writer.write(out)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.dropped.append(number)
            writer.close()

    @staticmethod
    def result(message: dict[str, Any], result: Any) -> bytes:
        return orjson.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})

    def answer(self, head: str, message: dict[str, Any]) -> bytes | None:
        method = message.get("method")
        if "id" not in message:
            return b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
        if method == "initialize":
            self.sessions += 1
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "t"}}
            return reply("200 OK", self.result(message, result), extra=f"Mcp-Session-Id: s{self.sessions}\r\n")
        if self.forget_session and "mcp-session-id:" in head:
            self.forget_session = False
            return reply("404 Not Found", b"", "text/plain")
        if method == "tools/list":
            return reply("200 OK", self.result(message, {"tools": [{"name": "echo", "inputSchema": {}}]}))
        name = message["params"]["name"]
        if name == "hang":
            return None
        if name == "stall":  # the head and part of the body, then nothing
            return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        if name == "big":
            return reply("200 OK", self.result(message, {"content": [{"type": "text", "text": "x" * 5000}]}))
        if name == "sse":
            note = orjson.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "hi"}})
            answer = self.result(message, {"content": [{"type": "text", "text": "via sse"}]})
            events = b"event: message\ndata: " + note + b"\n\ndata: " + answer + b"\n\n"
            return reply("200 OK", events, "text/event-stream")
        return reply("200 OK", self.result(message, {"content": [{"type": "text", "text": name}]}))

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/mcp"

    def cancellations(self) -> list[dict[str, Any]]:
        return [m["params"] for m in self.messages if m.get("method") == "notifications/cancelled"]


@pytest.fixture
async def server() -> AsyncIterator[McpServer]:
    srv = McpServer()
    srv.server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    yield srv
    srv.server.close()
    for handler in srv.handlers:
        handler.cancel()
    await asyncio.gather(*srv.handlers, return_exceptions=True)
    for writer in srv.writers:
        writer.close()
    await srv.server.wait_closed()


@pytest.fixture
async def backend(server: McpServer) -> AsyncIterator[HttpBackend]:
    be = HttpBackend(server.url)
    await be.start()
    await until(lambda: server.gets == 1 and be._listener is not None and be._listener.done())  # 405: no stream
    yield be
    await be.stop()


async def until(condition: Any, seconds: float = 5.0) -> None:
    """Poll `condition()` until it holds; fail after `seconds`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not condition():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.005)


def call(name: str) -> dict[str, Any]:
    return {"name": name, "arguments": {}}


def text(answer: dict[str, Any]) -> str:
    return str(answer["result"]["content"][0]["text"])


async def test_calls_reuse_one_connection(server: McpServer, backend: HttpBackend) -> None:
    before = server.connections
    for _ in range(5):
        assert text(await backend.request("tools/call", call("echo"), 5.0)) == "echo"
    assert server.connections == before  # the handshake's connection, kept alive


@pytest.mark.parametrize("tool", ["hang", "stall"])  # no answer at all; the head, then the body stalls
async def test_the_tool_timeout_fires_drops_the_connection_and_cancels_upstream(
    server: McpServer, backend: HttpBackend, tool: str
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BackendTimeout, match=r"within 0\.1s"):
        async with asyncio.timeout(10):  # a guard: the test fails, rather than hangs, if the timeout never fires
            await backend.request("tools/call", call(tool), 0.1)
    assert loop.time() - started < 5
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the timeout's cancellation was taken back
    stalled = next(m["id"] for m in server.messages if m.get("params", {}).get("name") == tool)
    await until(lambda: server.cancellations() == [{"requestId": stalled, "reason": "timeout"}])
    await until(lambda: server.stalled_on[0] in server.dropped)  # its connection was closed...
    assert server.on_connection[server.stalled_on[0]][-1]["id"] == stalled  # ...never reused
    assert text(await backend.request("tools/call", call("echo"), 5.0)) == "echo"  # and the backend goes on


async def test_a_cancelled_call_stays_cancelled_and_tells_the_server(server: McpServer, backend: HttpBackend) -> None:
    task = asyncio.ensure_future(backend.request("tools/call", call("hang"), 30.0))
    await until(lambda: any(m.get("params", {}).get("name") == "hang" for m in server.messages))
    task.cancel()  # as InFlight does on a client's notifications/cancelled
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: [c["reason"] for c in server.cancellations()] == ["cancelled by the client"])


async def test_a_forgotten_session_is_renewed_and_the_call_retried_once(
    server: McpServer, backend: HttpBackend
) -> None:
    server.forget_session = True
    assert text(await backend.request("tools/call", call("echo"), 5.0)) == "echo"
    assert server.sessions == 2
    calls = [m for m in server.messages if m.get("method") == "tools/call"]
    assert len(calls) == 2  # the 404'd one, then the retry in the new session


async def test_a_body_over_the_bound_fails_the_call(
    server: McpServer, backend: HttpBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_backend, "MAX_RESPONSE_BYTES", 1000)
    with pytest.raises(BackendUnavailable, match=r"over 1000 bytes"):
        await backend.request("tools/call", call("big"), 5.0)
    assert text(await backend.request("tools/call", call("echo"), 5.0)) == "echo"


async def test_pooled_connections_the_server_closed_are_replaced(server: McpServer, backend: HttpBackend) -> None:
    pool = backend._client
    assert isinstance(pool, H1Pool) and pool._idle
    for writer in server.writers:  # the server's idle timeout: every kept-alive connection closed
        writer.close()
    await until(lambda: all(conn.closed for conn, _ in pool._idle))
    before = server.connections
    assert text(await backend.request("tools/call", call("echo"), 5.0)) == "echo"
    assert server.connections == before + 1


async def test_an_sse_answer_is_read_and_other_messages_passed_on(server: McpServer, backend: HttpBackend) -> None:
    seen: list[dict[str, Any]] = []
    backend.add_listener(seen.append)
    assert text(await backend.request("tools/call", call("sse"), 5.0)) == "via sse"
    assert [m["method"] for m in seen] == ["notifications/message"]
    assert text(await backend.request("tools/call", call("echo"), 5.0)) == "echo"  # the connection is in step


async def test_an_unreachable_server_was_not_delivered(server: McpServer, backend: HttpBackend) -> None:
    assert server.server is not None
    server.server.close()
    for writer in server.writers:
        writer.close()
    await server.server.wait_closed()
    pool = backend._client
    assert isinstance(pool, H1Pool)
    await until(lambda: all(conn.closed for conn, _ in pool._idle))
    with pytest.raises(BackendUnavailable) as failed:
        await backend.request("tools/call", call("echo"), 5.0)
    assert failed.value.delivered is False
