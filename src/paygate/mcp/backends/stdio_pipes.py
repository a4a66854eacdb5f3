"""The two pipes of a stdio server, without asyncio streams.

Why not `asyncio.create_subprocess_exec(stdout=PIPE)`: a subprocess transport hands pipe data to its
protocol one loop pass late (`call_soon`, in asyncio and uvloop alike), then a `StreamReader` buffers it and
wakes a reader task on yet another pass, which finds the line and resolves the call's future. Here the pipes
are our own (`os.pipe`, connected with `connect_read_pipe`/`connect_write_pipe`), so the answer's line is
split and handed on in the very callback that read it; the subprocess transport only watches the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping

log = logging.getLogger("paygate.backend.stdio")


class LineReader(asyncio.Protocol):
    """The server's stdout: every complete line (with its newline) goes to `on_line` as soon as it is read.

    A line longer than `limit` is dropped, logged, up to its newline, and the stream stays in step. At EOF a
    last line without a newline is handed on too; then `closed` is set.
    """

    def __init__(self, on_line: Callable[[bytes], None], limit: int, label: str) -> None:
        self._on_line = on_line
        self._limit = limit
        self._label = label
        self._tail = bytearray()  # the start of a line whose newline has not come yet
        self._skipping = False  # inside a line over the limit: drop up to its newline
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        start = 0
        if self._tail or self._skipping:  # a line begun in an earlier read
            end = data.find(b"\n")
            if end < 0:
                self._keep(data)
                return
            start = end + 1
            if self._skipping:
                self._skipping = False
            elif len(self._tail) + end > self._limit:
                self._tail.clear()
                self._dropped()
            else:
                self._tail += data[:start]
                line = bytes(self._tail)
                self._tail.clear()
                self._on_line(line)
        # Usually one whole line per read: `data[0:len(data)]` is `data` itself, no copy.
        end = data.find(b"\n", start)
        while end >= 0:
            if end - start > self._limit:
                self._dropped()
            else:
                self._on_line(data[start : end + 1])
            start = end + 1
            end = data.find(b"\n", start)
        if start < len(data):
            self._keep(data[start:])

    def _keep(self, part: bytes) -> None:
        if self._skipping:
            return
        if len(self._tail) + len(part) > self._limit:
            self._tail.clear()
            self._skipping = True
            self._dropped()
            return
        self._tail += part

    def _dropped(self) -> None:
        log.error("%s: message over %d bytes dropped", self._label, self._limit)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tail:
            line = bytes(self._tail)
            self._tail.clear()
            self._on_line(line)
        self.closed.set()


class PipeWriter(asyncio.BaseProtocol):
    """The server's stdin: the transport, and waiting for room as `StreamWriter.drain` does."""

    transport: asyncio.WriteTransport

    def __init__(self) -> None:
        self._paused = False
        self._lost = False
        self._waiters: list[asyncio.Future[None]] = []
        self.high_water = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.WriteTransport
        self.high_water = self.transport.get_write_buffer_limits()[1]

    def backlogged(self) -> bool:
        """More unwritten bytes than the high-water mark: the process is not reading."""
        return self.transport.get_write_buffer_size() > self.high_water

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake(exc or ConnectionResetError("the pipe is closed"))

    def _wake(self, exc: Exception | None) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    async def drain(self) -> None:
        """Return once the pipe takes writes again; ConnectionError if it closed."""
        if self._lost or self.transport.is_closing():
            raise ConnectionResetError("the pipe is closed")
        if not self._paused:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)


async def spawn(
    command: str, args: list[str], env: Mapping[str, str], stdout: LineReader
) -> tuple[asyncio.subprocess.Process, PipeWriter]:
    """Start the server on two pipes of our own: its stdout read into `stdout`, its stdin written through
    the returned PipeWriter. Its stderr is the gateway's."""
    loop = asyncio.get_running_loop()
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            command,
            *args,
            stdin=stdin_r,
            stdout=stdout_w,
            env=dict(env),
            # Its own session: a Ctrl-C at the terminal reaches the gateway only, which stops the server
            # itself (stdin closed, then SIGTERM) instead of the server dying mid-call with a traceback.
            start_new_session=True,
        )
    except BaseException:
        for fd in (stdin_w, stdout_r):
            os.close(fd)
        raise
    finally:
        os.close(stdin_r)  # the child's ends: held open here, its EOF would never come
        os.close(stdout_w)
    # wrapping a pipe descriptor: nothing blocks
    to_child, from_child = os.fdopen(stdin_w, "wb", buffering=0), os.fdopen(stdout_r, "rb", buffering=0)
    try:
        _, writer = await loop.connect_write_pipe(PipeWriter, to_child)
        await loop.connect_read_pipe(lambda: stdout, from_child)
    except BaseException:
        to_child.close()
        from_child.close()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    return proc, writer
