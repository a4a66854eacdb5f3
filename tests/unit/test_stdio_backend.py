"""StdioBackend in-process: the process and its pipes are a scripted double (no process starts), so each
read of the server's output is exactly the bytes a test hands `data_received`. The real pipes and processes
are tests/e2e/test_stdio_pipes.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
import pytest

from paygate.mcp.backends import stdio
from paygate.mcp.backends.base import BackendTimeout, BackendUnavailable
from paygate.mcp.backends.stdio import StdioBackend
from paygate.mcp.backends.stdio_pipes import LineReader, PipeWriter
from paygate.mcp.jsonrpc import Message


class FakeProcess:
    pid = 4242

    def __init__(self) -> None:
        self.returncode: int | None = None
        self._exited = asyncio.Event()

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def exit(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
            self._exited.set()

    def terminate(self) -> None:
        self.exit(-15)

    def kill(self) -> None:
        self.exit(-9)


class FakeServer:
    """The process, the write transport of its stdin and the writer of its stdout in one. It answers the
    handshake by itself; tools/call `hold` is left for the test to answer (`held`)."""

    def __init__(self) -> None:
        self.proc = FakeProcess()
        self.reader: LineReader | None = None
        self.received: list[Message] = []
        self.held: list[int] = []
        self.unwritten = 0  # what the transport reports as buffered
        self.closed = False

    # the stdin transport
    def write(self, data: bytes) -> None:
        for line in data.splitlines():
            message = orjson.loads(line)
            self.received.append(message)
            self._answer(message)

    def _answer(self, message: Message) -> None:
        method, our_id = message.get("method"), message.get("id")
        if our_id is None:
            return
        if method == "initialize":
            result: Any = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "f"}}
        elif method == "tools/list":
            result = {"tools": [{"name": "echo"}, {"name": "hold"}]}
        elif message["params"]["name"] == "hold":
            self.held.append(our_id)
            return
        else:
            result = {"content": [{"type": "text", "text": message["params"]["arguments"]["text"]}]}
        reply = orjson.dumps({"jsonrpc": "2.0", "id": our_id, "result": result}) + b"\n"
        asyncio.get_running_loop().call_soon(self.send, reply)  # as a pipe would: on a later loop pass

    def get_write_buffer_size(self) -> int:
        return self.unwritten

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (16 * 1024, 64 * 1024)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:  # stdin closed: the server exits
        self.closed = True
        self.exit(0)

    # the server's side
    def send(self, *reads: bytes) -> None:
        """Each argument is one read of the server's output."""
        assert self.reader is not None
        for data in reads:
            self.reader.data_received(data)

    def exit(self, code: int) -> None:
        """The process exits: its stdout ends, then it is reaped."""
        assert self.reader is not None
        if not self.reader.closed.is_set():
            self.reader.connection_lost(None)
        self.proc.exit(code)


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    fake = FakeServer()

    async def spawn(
        command: str, args: list[str], env: Mapping[str, str], stdout: LineReader
    ) -> tuple[FakeProcess, PipeWriter]:
        fake.reader = stdout
        writer = PipeWriter()
        writer.connection_made(fake)  # type: ignore[arg-type]
        return fake.proc, writer

    monkeypatch.setattr(stdio, "spawn", spawn)
    return fake


@pytest.fixture
async def backend(server: FakeServer) -> AsyncIterator[StdioBackend]:
    backend = StdioBackend("fake", [], "fake")
    await backend.start()
    yield backend
    await backend.stop()


async def until(condition: Any, what: str, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


def hold(backend: StdioBackend, timeout: float = 10.0) -> asyncio.Task[Message]:
    params = {"name": "hold", "arguments": {}}
    return asyncio.get_running_loop().create_task(backend.request("tools/call", params, timeout))


def answer(our_id: int, text: str) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": our_id, "result": {"text": text}}) + b"\n"


async def test_a_call_is_answered_in_the_read_that_brings_its_line(backend: StdioBackend, server: FakeServer) -> None:
    assert backend.ready and [t["name"] for t in backend.tools] == ["echo", "hold"]
    call = hold(backend)
    await until(lambda: server.held, "the call to be written")
    server.send(answer(server.held[0], "hi"))
    # no reader task between the bytes and the call: its future is resolved already
    await asyncio.sleep(0)
    assert call.done() and call.result()["result"] == {"text": "hi"}


async def test_an_answer_split_across_several_reads_reaches_its_call(backend: StdioBackend, server: FakeServer) -> None:
    call = hold(backend)
    await until(lambda: server.held, "the call to be written")
    line = answer(server.held[0], "split")
    server.send(line[:5], line[5:9], line[9:-1])
    await asyncio.sleep(0)
    assert not call.done()
    server.send(line[-1:])
    assert (await call)["result"] == {"text": "split"}


async def test_several_answers_in_one_read_each_reach_their_own_call(backend: StdioBackend, server: FakeServer) -> None:
    calls = [hold(backend) for _ in range(3)]
    await until(lambda: len(server.held) == 3, "the calls to be written")
    first, second, third = server.held
    line = answer(third, "c") + answer(first, "a") + answer(second, "b")
    server.send(line[:-7], line[-7:])  # and the last one split across the reads
    assert [(await c)["result"]["text"] for c in calls] == ["a", "b", "c"]


async def test_a_line_over_the_bound_is_dropped_and_the_stream_stays_in_step(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(stdio, "LINE_LIMIT", 200)
    backend = StdioBackend("fake", [], "fake")
    await backend.start()
    try:
        calls = [hold(backend), hold(backend)]
        await until(lambda: len(server.held) == 2, "the calls to be written")
        one, two = server.held
        long_line = answer(one, "x" * 300)  # a valid answer: dropped, not delivered
        server.send(long_line[:150], long_line[150:])  # over the bound across reads
        server.send(answer(one, "short"))
        server.send(answer(two, "y" * 300) + answer(two, "short too"))  # over the bound inside one read
        assert [(await c)["result"]["text"] for c in calls] == ["short", "short too"]
        assert caplog.text.count("message over 200 bytes dropped") == 2
    finally:
        await backend.stop()


async def test_a_non_json_line_is_skipped(
    backend: StdioBackend, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "paygate.backend.stdio")
    call = hold(backend)
    await until(lambda: server.held, "the call to be written")
    server.send(b"Server starting... \n[1, 2]\n\n" + answer(server.held[0], "after the noise"))
    assert (await call)["result"]["text"] == "after the noise"
    assert "non-JSON output ignored: b'Server starting... \\n'" in caplog.text


async def test_the_end_of_the_output_mid_call_fails_the_call_as_unavailable(
    backend: StdioBackend, server: FakeServer
) -> None:
    call = hold(backend)
    await until(lambda: server.held, "the call to be written")
    server.send(b'{"jsonrpc": "2.0", "id": ')  # half a line, then the process dies
    server.exit(1)
    with pytest.raises(BackendUnavailable, match="backend process exited") as raised:
        await call
    assert raised.value.delivered  # it was written: the server may have run it
    assert not backend.ready
    with pytest.raises(BackendUnavailable) as refused:  # until the supervisor restarts it
        await backend.request("tools/call", {"name": "echo", "arguments": {"text": "x"}}, 5)
    assert not refused.value.delivered


async def test_a_last_line_without_a_newline_is_read_at_the_end(backend: StdioBackend, server: FakeServer) -> None:
    call = hold(backend)
    await until(lambda: server.held, "the call to be written")
    server.send(answer(server.held[0], "last")[:-1])
    server.exit(0)
    assert (await call)["result"]["text"] == "last"


async def test_server_requests_and_notifications_reach_the_listeners(backend: StdioBackend, server: FakeServer) -> None:
    seen: list[Message] = []
    backend.add_listener(seen.append)
    call = hold(backend)
    await until(lambda: server.held, "the call to be written")
    request = {"jsonrpc": "2.0", "id": "s1", "method": "sampling/createMessage", "params": {"messages": []}}
    progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
    server.send(orjson.dumps(request) + b"\n" + orjson.dumps(progress) + b"\n" + answer(server.held[0], "done"))
    assert (await call)["result"]["text"] == "done"
    assert seen == [request, progress]
    await backend.respond({"jsonrpc": "2.0", "id": "s1", "result": {"content": {"type": "text", "text": "ok"}}})
    await until(lambda: server.received[-1].get("id") == "s1", "the client's answer to reach the server")


async def test_a_timed_out_call_is_cancelled_at_the_server(backend: StdioBackend, server: FakeServer) -> None:
    with pytest.raises(BackendTimeout):
        await backend.request("tools/call", {"name": "hold", "arguments": {}}, 0.05)
    await until(lambda: server.received[-1]["method"] == "notifications/cancelled", "the cancellation")
    assert server.received[-1]["params"]["requestId"] == server.held[0]


async def test_a_call_waits_for_room_in_a_full_pipe_only_until_its_deadline(
    backend: StdioBackend, server: FakeServer
) -> None:
    server.unwritten = 65 * 1024
    assert backend._stdin is not None
    backend._stdin.pause_writing()
    with pytest.raises(BackendTimeout, match="not reading its input"):
        await backend.request("tools/call", {"name": "echo", "arguments": {"text": "x"}}, 0.05)
    waiting = asyncio.get_running_loop().create_task(
        backend.request("tools/call", {"name": "echo", "arguments": {"text": "let through"}}, 5)
    )
    await asyncio.sleep(0)
    assert not waiting.done()
    server.unwritten = 0
    backend._stdin.resume_writing()
    assert (await waiting)["result"]["content"][0]["text"] == "let through"


async def test_a_wait_for_room_ends_when_the_pipe_closes() -> None:
    writer = PipeWriter()
    server = FakeServer()
    writer.connection_made(server)  # type: ignore[arg-type]
    await writer.drain()  # not paused: no wait
    writer.pause_writing()
    waiting = asyncio.get_running_loop().create_task(writer.drain())
    await asyncio.sleep(0)
    assert not waiting.done()
    writer.connection_lost(None)
    with pytest.raises(ConnectionResetError):
        await waiting
    with pytest.raises(ConnectionResetError):
        await writer.drain()


def test_the_line_reader_hands_on_whole_lines_only() -> None:
    lines: list[bytes] = []
    reader = LineReader(lines.append, 10, "t")
    reader.data_received(b"ab")
    reader.data_received(b"c\nde\nf")
    reader.data_received(b"g\n")
    reader.data_received(b"0123456789\n")  # exactly the bound: kept
    reader.data_received(b"0123456789X\nok\n")  # one byte over: dropped
    reader.data_received(b"012345")
    reader.data_received(b"6789XY")  # over the bound before its newline: dropped up to it
    reader.data_received(b"more")
    reader.data_received(b"Z\n")
    reader.data_received(b"x\nend")
    reader.data_received(b"_of_a_line_that_is_long\n")  # completed over the bound: dropped
    reader.data_received(b"next\nend")
    assert lines == [b"abc\n", b"de\n", b"fg\n", b"0123456789\n", b"ok\n", b"x\n", b"next\n"]
    reader.connection_lost(None)
    assert lines[-1] == b"end" and reader.closed.is_set()


async def test_a_request_before_start_is_refused_as_never_delivered() -> None:
    with pytest.raises(BackendUnavailable, match="not running") as refused:
        await StdioBackend("fake", [], "fake").request("tools/call", {"name": "echo"}, 1.0)
    assert not refused.value.delivered
