"""The lean upstream HTTP/1.1 client (paygate.http.h1) against a scripted raw server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from paygate.http.h1 import H1Error, H1Pool, ResponseTooLarge

Script = Callable[[bytes], list[bytes]]  # request bytes -> chunks to send back (b"" = close)


class Server:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                for chunk in self.script(request):
                    if chunk == b"":
                        writer.close()
                        return
                    writer.write(chunk)
                    await writer.drain()
                    await asyncio.sleep(0.001)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/mcp?x=1"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], asyncio.Future[Server]]]:
    servers: list[Server] = []

    async def start(script: Script) -> Server:
        srv = Server(script)
        srv.server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        servers.append(srv)
        return srv

    yield start  # type: ignore[misc]
    for srv in servers:
        assert srv.server is not None
        srv.server.close()
        for writer in srv.writers:
            writer.close()
        await asyncio.sleep(0.01)  # let the transports finish closing


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def json_reply(body: bytes = b'{"ok":true}') -> Script:
    return lambda _req: [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    ]


async def test_keep_alive_reuses_one_connection_and_sends_our_headers(serve) -> None:  # type: ignore[no-untyped-def]
    srv = await serve(json_reply())
    pool = H1Pool(srv.url, user_agent="ua/1")
    for _ in range(3):
        async with pool.stream("POST", {"Accept": "application/json"}, b"{}") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"] == "application/json"
            assert await resp.read(1000) == b'{"ok":true}'
    await pool.aclose()
    assert srv.connections == 1
    first = srv.requests[0]
    assert first.startswith(b"POST /mcp?x=1 HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in first and b"\r\nUser-Agent: ua/1\r\n" in first
    assert b"\r\nAccept: application/json\r\n" in first and first.endswith(b"Content-Length: 2\r\n\r\n{}")


async def test_chunked_body_split_across_writes(serve) -> None:  # type: ignore[no-untyped-def]
    srv = await serve(
        lambda _req: [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            b"lo\r\n" + chunk(b" world"),
            b"0\r\n\r\n",
        ]
    )
    pool = H1Pool(srv.url)
    async with pool.stream("POST", {}, b"x") as resp:
        assert await resp.read(1000) == b"hello world"
    async with pool.stream("POST", {}, b"x") as resp:  # the connection is still in step
        assert await resp.read(1000) == b"hello world"
    await pool.aclose()
    assert srv.connections == 1


async def test_sse_lines_with_mixed_terminators(serve) -> None:  # type: ignore[no-untyped-def]
    srv = await serve(
        lambda _req: [
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
            chunk(b"event: a\r\ndata: 1\r"),
            chunk(b"\ndata: \xc3"),
            chunk(b"\xa9\n\n"),
            b"0\r\n\r\n",
        ]
    )
    pool = H1Pool(srv.url)
    async with pool.stream("POST", {}, b"x") as resp:
        lines = [line async for line in resp.aiter_lines()]
    await pool.aclose()
    assert lines == ["event: a", "data: 1", "data: é", ""]  # the \n after a chunk-final \r is not a line


async def test_close_delimited_body_ends_with_the_connection(serve) -> None:  # type: ignore[no-untyped-def]
    srv = await serve(lambda _req: [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npartial", b" body", b""])
    pool = H1Pool(srv.url)
    async with pool.stream("POST", {}, b"x") as resp:
        assert await resp.read(1000) == b"partial body"
    async with pool.stream("POST", {}, b"x") as resp:  # a fresh connection: the old one was closed
        assert await resp.read(1000) == b"partial body"
    await pool.aclose()
    assert srv.connections == 2


async def test_too_large_and_truncated_responses_fail(serve) -> None:  # type: ignore[no-untyped-def]
    big = await serve(json_reply(b"x" * 5000))
    pool = H1Pool(big.url)
    with pytest.raises(ResponseTooLarge):
        async with pool.stream("POST", {}, b"x") as resp:
            await resp.read(100)
    await pool.aclose()
    cut = await serve(lambda _req: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", b""])
    pool = H1Pool(cut.url)
    with pytest.raises(H1Error, match="closed mid-response"):
        async with pool.stream("POST", {}, b"x") as resp:
            await resp.read(1000)
    await pool.aclose()


async def test_connection_refused_is_an_h1_error() -> None:
    pool = H1Pool("http://127.0.0.1:9/mcp")
    with pytest.raises(H1Error, match="cannot connect"):
        async with pool.stream("POST", {}, b"x"):
            pass
    await pool.aclose()


async def test_the_pool_bounds_connections_and_queues_the_rest(serve) -> None:  # type: ignore[no-untyped-def]
    srv = await serve(json_reply())
    pool = H1Pool(srv.url, max_connections=2)

    async def call() -> bytes:
        async with pool.stream("POST", {}, b"x") as resp:
            return await resp.read(1000)

    assert await asyncio.gather(*(call() for _ in range(20))) == [b'{"ok":true}'] * 20
    await pool.aclose()
    assert srv.connections == 2


async def test_a_cancelled_request_drops_its_connection(serve) -> None:  # type: ignore[no-untyped-def]
    slow = await serve(lambda _req: [])  # never answers
    pool = H1Pool(slow.url, max_connections=1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05), pool.stream("POST", {}, b"x"):
            pass
    assert pool._open == 0 and not pool._idle  # the slot is free again for the next caller
    await pool.aclose()


def test_only_http_urls() -> None:
    with pytest.raises(ValueError):
        H1Pool("ftp://example.com/x")


async def test_an_idle_connection_past_the_keepalive_expiry_is_closed_not_reused(serve) -> None:  # type: ignore[no-untyped-def]
    srv = await serve(json_reply())
    now = [100.0]
    pool = H1Pool(srv.url, keepalive_expiry=4.0, clock=lambda: now[0])
    for advance in (0.0, 3.9, 4.1):  # reused within the expiry; a new connection after it
        now[0] += advance
        async with pool.stream("POST", {}, b"{}") as resp:
            assert await resp.read(1000) == b'{"ok":true}'
    assert srv.connections == 2
    assert pool._open == 1  # the expired one was closed and counted out
    await pool.aclose()
