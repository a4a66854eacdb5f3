"""paygate/http/response_cycle.py: each complete response in one `transport.write`, the same bytes on the
wire as uvicorn's own cycle, heads of streams not held back.

The protocols are driven directly: a fake transport records every write, a request is fed as bytes,
and the same ASGI app is served by uvicorn's `HttpToolsProtocol` and by ours to compare the bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from paygate.http.response_cycle import OneWriteHttpProtocol
from paygate.http.server import ConnectionGate, ServerLimits, protocol_for

App = Callable[[Any, Any, Any], Awaitable[None]]
POST = b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
GET = b"GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n"
BODY = b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}'
MCP_HEADERS = [
    (b"content-type", b"application/json"),
    (b"mcp-session-id", b"3f0c2a9e5b7d4e1f8a6c0b2d4f6e8a1c"),
    (b"x-request-id", b"req_5f3a1b2c"),
    (b"x-paygate-version", b"1.0.0"),
    (b"x-credits-remaining", b"99"),
    (b"x-ratelimit-limit", b"60"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "a write after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def connect(protocol_class: type[HttpToolsProtocol], app: App) -> tuple[HttpToolsProtocol, FakeTransport, ServerState]:
    config = uvicorn.Config(app, proxy_headers=False, lifespan="off", log_config=None)
    state = ServerState()
    state.default_headers = [(b"date", b"Tue, 01 Jul 2025 00:00:00 GMT")]
    protocol = protocol_class(config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop())
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport, state


async def settle(state: ServerState) -> None:
    """Until the app tasks are done, then one loop iteration (a head held until then is written)."""
    if state.tasks:
        await asyncio.wait(list(state.tasks), timeout=5)
    await asyncio.sleep(0)


async def serve(protocol_class: type[HttpToolsProtocol], app: App, request: bytes = POST) -> FakeTransport:
    protocol, transport, state = connect(protocol_class, app)
    protocol.data_received(request)
    await settle(state)
    return transport


def answer(status: int, headers: list[tuple[bytes, bytes]], *bodies: bytes, more: bool = False) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for i, body in enumerate(bodies):
            await send({"type": "http.response.body", "body": body, "more_body": more or i < len(bodies) - 1})

    return app


def json_app(headers: list[tuple[bytes, bytes]] = MCP_HEADERS, body: bytes = BODY) -> App:
    return answer(200, [*headers, (b"content-length", b"%d" % len(body))], body)


async def test_a_json_answer_is_written_at_once_with_the_bytes_uvicorn_writes() -> None:
    ours = await serve(OneWriteHttpProtocol, json_app())
    theirs = await serve(HttpToolsProtocol, json_app())
    assert len(ours.writes) == 1
    assert len(theirs.writes) == 2
    assert ours.writes[0] == b"".join(theirs.writes)
    assert ours.writes[0].startswith(b"HTTP/1.1 200 OK\r\ndate: ")
    assert ours.writes[0].endswith(b"\r\n\r\n" + BODY)


async def _raise_after_start(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    raise ValueError("boom")


async def _return_after_start(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})


CL = (b"content-length", b"5")
CASES: dict[str, tuple[App, bytes]] = {
    "no headers": (answer(200, [], b""), POST),
    "upper-case names": (answer(201, [(b"Content-Type", b"text/plain"), (b"Content-Length", b"5")], b"hello"), POST),
    "chunked, no length": (answer(200, [(b"content-type", b"text/plain")], b"hel", b"lo"), POST),
    "chunked, declared": (answer(200, [(b"transfer-encoding", b"Chunked")], b"hello", b""), POST),
    "length then chunked": (answer(200, [CL, (b"transfer-encoding", b"chunked")], b"hello"), POST),
    "chunked then length": (answer(200, [(b"transfer-encoding", b"chunked"), CL], b"hello"), POST),
    "two lengths, the first counts": (answer(200, [CL, (b"content-length", b"9")], b"hello"), POST),
    "connection: close": (answer(200, [CL, (b"connection", b"keep-alive, Close")], b"hello"), POST),
    "connection: keep-alive": (answer(200, [CL, (b"connection", b"keep-alive")], b"hello"), POST),
    "http/1.0": (answer(200, [CL], b"hello"), b"GET / HTTP/1.0\r\n\r\n"),
    "client's connection: close": (answer(200, [CL], b"hello"), b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
    "HEAD": (answer(200, [CL], b"hello"), b"HEAD / HTTP/1.1\r\n\r\n"),
    "HEAD, no length": (answer(200, [], b""), b"HEAD / HTTP/1.1\r\n\r\n"),
    "204": (answer(204, [], b""), POST),
    "304": (answer(304, [(b"etag", b'"x"')], b""), GET),
    "a tab in a value": (answer(200, [CL, (b"x-a", b"a\tb")], b"hello"), POST),
    "SSE": (answer(200, [(b"content-type", b"text/event-stream")], b": open\n\n", b"data: 1\n\n", b""), GET),
    "more_body, then empty": (answer(200, [CL], b"hel", b"lo", b""), POST),
    "CR LF in a value": (answer(200, [(b"x-a", b"a\r\nx-b: b"), CL], b"hello"), POST),
    "NUL in a value": (answer(200, [CL, (b"x-a", b"a\x00")], b"hello"), POST),
    "DEL in a value": (answer(200, [CL, (b"x-a", b"\x7f")], b"hello"), POST),
    "a space in a name": (answer(200, [(b"x a", b"1"), CL], b"hello"), POST),
    "a colon in a name": (answer(200, [CL, (b"x:a", b"1")], b"hello"), POST),
    "LF in a name": (answer(200, [CL, (b"x\na", b"1")], b"hello"), POST),
    "longer than its length": (answer(200, [CL], b"hello!"), POST),
    "shorter than its length": (answer(200, [CL], b"hell"), POST),
    "body over two sends, too long": (answer(200, [CL], b"hel", b"lo!"), POST),
    "a bad length": (answer(200, [(b"content-length", b"x")], b"hello"), POST),
    "an error after the start": (_raise_after_start, POST),
    "a return after the start": (_return_after_start, POST),
    "expect: 100-continue": (answer(200, [CL], b"hello"), b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"),
}


@pytest.mark.parametrize("case", CASES)
async def test_the_same_bytes_and_the_same_close_as_uvicorn(case: str, caplog: pytest.LogCaptureFixture) -> None:
    app, request = CASES[case]
    caplog.set_level(logging.CRITICAL, "uvicorn.error")  # the faulty cases log uvicorn's error
    ours = await serve(OneWriteHttpProtocol, app, request)
    theirs = await serve(HttpToolsProtocol, app, request)
    assert b"".join(ours.writes) == b"".join(theirs.writes)
    assert ours.closed == theirs.closed
    assert len(ours.writes) <= len(theirs.writes)


async def test_every_byte_in_a_name_or_a_value_is_refused_exactly_when_uvicorn_refuses_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.CRITICAL, "uvicorn.error")
    refused = 0
    for byte in (bytes((b,)) for b in range(256)):
        for header in ((b"x-" + byte, b"1"), (b"x-a", b"a" + byte + b"b")):
            app = answer(200, [CL, header], b"hello")
            ours, theirs = await serve(OneWriteHttpProtocol, app), await serve(HttpToolsProtocol, app)
            assert (b"".join(ours.writes), ours.closed) == (b"".join(theirs.writes), theirs.closed), header
            refused += not ours.writes
    assert refused == (32 + 1 + 16) + (31 + 1)  # names: controls, DEL, 16 separators; values: controls but tab, DEL


async def test_an_sse_stream_writes_its_head_with_its_first_chunk_then_each_chunk_as_it_comes() -> None:
    chunks = [b": stream open\n\n", b"data: 1\n\n", b"data: 2\n\n"]
    protocol, transport, state = connect(OneWriteHttpProtocol, answer(200, [(b"content-type", b"text/event-stream")]))
    release = asyncio.Event()

    async def stream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await release.wait()
            release.clear()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    protocol.app = stream
    protocol.data_received(GET)
    await until(lambda: len(transport.writes) == 1)
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"transfer-encoding: chunked\r\n\r\nf\r\n: stream open\n\n\r\n")
    for chunk in chunks[1:]:
        written = len(transport.writes)
        release.set()
        await until(lambda: len(transport.writes) > written)  # noqa: B023 (awaited at once)
        assert transport.writes[written:] == [b"9\r\n%s\r\n" % chunk]
    release.set()
    await settle(state)
    assert transport.writes[-1] == b"0\r\n\r\n"
    assert not transport.closed


async def test_a_stream_that_sends_its_start_then_waits_has_its_head_written_at_once() -> None:
    waiting = asyncio.Event()
    release = asyncio.Event()

    async def stream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        waiting.set()
        await release.wait()  # no event yet: the client must see the 200 meanwhile
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": False})

    protocol, transport, state = connect(OneWriteHttpProtocol, stream)
    protocol.data_received(GET)
    await asyncio.wait_for(waiting.wait(), 5)
    await until(lambda: len(transport.writes) == 1)
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and transport.writes[0].endswith(b"\r\n\r\n")
    release.set()
    await settle(state)
    assert transport.writes[1:] == [b"9\r\ndata: 1\n\n\r\n0\r\n\r\n"]


async def test_a_response_with_a_length_is_written_whole_when_its_body_comes() -> None:
    release = asyncio.Event()

    async def slow_body(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [CL]})
        await release.wait()
        await send({"type": "http.response.body", "body": b"hello"})

    protocol, transport, state = connect(OneWriteHttpProtocol, slow_body)
    protocol.data_received(POST)
    for _ in range(3):
        await asyncio.sleep(0)  # loop iterations pass: no callback writes a head with a length alone
    assert transport.writes == []
    release.set()
    await settle(state)
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"content-length: 5\r\n\r\nhello")


async def test_the_nth_request_on_a_connection_is_answered_with_connection_close_in_one_write() -> None:
    limits = ServerLimits(
        max_connections=10,
        max_connections_per_address=0,
        headers_timeout=10,
        request_timeout=0,
        keep_alive_timeout=10,
        max_requests_per_socket=2,
        max_header_bytes=16384,
    )
    protocol, transport, state = connect(protocol_for(ConnectionGate(limits)), json_app())
    protocol.data_received(POST)
    await settle(state)
    assert len(transport.writes) == 1 and b"connection: close" not in transport.writes[0]
    assert not transport.closed
    protocol.data_received(POST)
    await settle(state)
    assert len(transport.writes) == 2 and b"\r\nconnection: close\r\n" in transport.writes[1]
    assert transport.closed
    protocol.connection_lost(None)


async def until(done: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0)


# What response_cycle.py mirrors or relies on, as uvicorn 0.55 has it. When this fails, uvicorn changed
# one of them: compare the new code with response_cycle.py's copy, bring it in line, and update the hash.
MIRRORED: dict[str, tuple[Callable[..., Any], str]] = {
    "HttpToolsProtocol.on_headers_complete": (HttpToolsProtocol.on_headers_complete, "1ea8589acfad"),
    "RequestResponseCycle.__init__": (RequestResponseCycle.__init__, "4d2f220910c3"),
    "RequestResponseCycle.run_asgi": (RequestResponseCycle.run_asgi, "0f33f2449a44"),
    "RequestResponseCycle.send": (RequestResponseCycle.send, "abdd8601b326"),
}


def test_uvicorn_s_header_patterns_are_still_single_byte_classes() -> None:
    # response_cycle.py derives the refused bytes from them, one byte at a time
    assert HEADER_RE.pattern == b'[\x00-\x1f\x7f()<>@,;:\\[\\]={} \t\\\\"]'
    assert HEADER_VALUE_RE.pattern == b"[\x00-\x08\x0a-\x1f\x7f]"


@pytest.mark.parametrize("name", MIRRORED)
def test_the_uvicorn_code_response_cycle_mirrors_is_unchanged(name: str) -> None:
    function, expected = MIRRORED[name]
    digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:12]
    assert digest == expected, f"uvicorn {uvicorn.__version__} changed {name}: check paygate/http/response_cycle.py"
