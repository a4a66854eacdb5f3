"""A local MCP server spoken to over its stdin/stdout.

Many client requests are multiplexed over the one process with ids of our
own. When the process dies, readiness turns false, pending calls fail with
`BackendUnavailable`, and the process is restarted with exponential backoff.

Writes never wait longer than the call they belong to. Messages go to the pipe
without waiting while the pipe keeps up; once the process stops reading and
the unwritten bytes pass the transport's high-water mark, a call waits for room
until its own deadline and then answers as a timeout, never written. A process
that has left WEDGED_AFTER calls in a row unwritten is hung: it is killed and
restarted as after a crash. Notifications and answers wait at most
MESSAGE_WAIT; the cancellation sent after a timeout is queued, never awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from typing import Any

import orjson

from paygate.mcp.backends.base import (
    BackendTimeout,
    BackendUnavailable,
    HandshakeMixin,
    MessageListener,
)
from paygate.mcp.backends.stdio_pipes import LineReader, PipeWriter, spawn
from paygate.mcp.jsonrpc import Message

log = logging.getLogger("paygate.backend.stdio")

LINE_LIMIT = 64 * 1024 * 1024  # the longest single JSON-RPC message we accept from a server
BACKOFF_START = 0.25
BACKOFF_MAX = 30.0
# Calls in a row that could not write their request within their own timeout (nothing drained in
# between) before the process is taken for hung and restarted.
WEDGED_AFTER = 3
MESSAGE_WAIT = 5.0  # the longest a notification or an answer to the server waits for room in the pipe


class StdioBackend(HandshakeMixin):
    def __init__(self, command: str, args: list[str], label: str = "stdio") -> None:
        self.command = command
        self.args = list(args)
        self.label = label
        self._proc: asyncio.subprocess.Process | None = None
        # The loop the pipes belong to, kept: `asyncio.get_running_loop()` makes a getpid system call each time.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stdin: PipeWriter | None = None  # the process's stdin (its stdout: a LineReader, stdio_pipes.py)
        self._watcher: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Message]] = {}
        # Messages written in one event-loop pass go to the pipe in one write: under load that is one
        # system call (and one wake-up of the server process) per batch instead of per message.
        self._outbox: list[bytes] = []
        self._flush_scheduled = False
        self._next_id = 0
        self._ready = False
        self._stopping = False
        self._exited = asyncio.Event()
        self._init_result: dict[str, Any] | None = None
        self._tools: list[dict[str, Any]] = []
        self._listeners: list[MessageListener] = []
        self.restarts = 0
        self._write_timeouts = 0  # consecutive calls whose request could not be written in time
        self._restarting: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # lifecycle -----------------------------------------------------------
    async def start(self) -> None:
        """Spawn and handshake; raise if the first start fails (the CLI reports it)."""
        await self._spawn()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _spawn(self) -> None:
        self._exited.clear()
        self._loop = asyncio.get_running_loop()
        stdout = LineReader(self._on_line, LINE_LIMIT, self.label)
        try:
            self._proc, self._stdin = await spawn(self.command, self.args, child_environment(os.environ), stdout)
        except OSError as exc:
            self._exited.set()
            raise BackendUnavailable(f"{self.label}: cannot start {self.command!r}: {exc}") from exc
        self._watcher = asyncio.get_running_loop().create_task(self._watch(self._proc, stdout))
        try:
            await self.handshake()
        except BackendUnavailable as exc:  # it exited: say with what code (after the reader has seen it go)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exited.wait(), 1.0)
            code = self._proc.returncode
            await self._kill()
            if code is None:
                raise
            raise BackendUnavailable(f"{exc} with exit code {code}", delivered=exc.delivered) from exc
        except BaseException:
            await self._kill()
            raise
        self._ready = True
        log.info("%s: backend ready (pid %s, %d tools)", self.label, self._proc.pid, len(self._tools))

    async def _supervise(self) -> None:
        """Restart the process whenever it exits, until stop()."""
        delay = BACKOFF_START
        while not self._stopping:
            await self._exited.wait()
            if self._stopping:
                return
            log.warning("%s: backend exited; restarting in %.2fs", self.label, delay)
            await asyncio.sleep(delay)
            try:
                await self._spawn()
                self.restarts += 1
                delay = BACKOFF_START
            except BackendUnavailable as exc:
                log.warning("%s: restart failed: %s", self.label, exc)
                delay = min(delay * 2, BACKOFF_MAX)
            except (BackendTimeout, OSError) as exc:
                log.warning("%s: restart failed: %s", self.label, exc)
                delay = min(delay * 2, BACKOFF_MAX)

    async def stop(self) -> None:
        self._stopping = True
        self._ready = False
        if self._supervisor:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._kill(graceful=True)

    async def _kill(self, graceful: bool = False) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            if graceful and self._stdin:
                self._flush()
                self._stdin.transport.close()  # the MCP way to ask a stdio server to exit
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 2.0)
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 3.0)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        if self._watcher:
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    # I/O -------------------------------------------------------------------
    async def _watch(self, proc: asyncio.subprocess.Process, stdout: LineReader) -> None:
        """Answers are handled as they are read (`_on_line`); this only waits for the end of the output."""
        try:
            await stdout.closed.wait()
        finally:
            self._ready = False
            self._outbox.clear()  # addressed to the process that just exited
            self._fail_pending(BackendUnavailable(f"{self.label}: backend process exited"))
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
            self._exited.set()

    def _on_line(self, line: bytes) -> None:
        """One line of the server's output, called from the pipe's read callback."""
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.debug("%s: non-JSON output ignored: %r", self.label, line[:200])
            return
        if not isinstance(message, dict):
            return
        if "method" not in message:
            future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(message)
            return
        if message["method"] == "initialize":  # never sent by a server: our own request, echoed (`cat`)
            future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_exception(
                    BackendUnavailable(f"{self.label}: the command echoed initialize back: it is not an MCP server")
                )
            return
        self.dispatch_incoming(message)

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)

    def _write(self, message: Message) -> None:
        proc, stdin, loop = self._proc, self._stdin, self._loop
        if proc is None or stdin is None or loop is None or proc.returncode is not None or stdin.transport.is_closing():
            raise BackendUnavailable(f"{self.label}: backend is not running", delivered=False)
        self._outbox.append(orjson.dumps(message))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outbox:
            return
        out, self._outbox = self._outbox, []
        stdin = self._stdin
        if stdin is None or stdin.transport.is_closing():
            return  # the process died: its pending calls fail in _watch
        out.append(b"")
        stdin.transport.write(b"\n".join(out))

    async def request(self, method: str, params: Any, timeout: float) -> Message:
        self._next_id += 1
        our_id = self._next_id
        message: Message = {"jsonrpc": "2.0", "id": our_id, "method": method}
        if self.modern:
            params = self.stamped(params)
        if params is not None:
            message["params"] = params
        loop = self._loop
        if loop is None:  # never started
            raise BackendUnavailable(f"{self.label}: backend is not running", delivered=False)
        left = timeout
        if self._backlogged():  # the process is not keeping up: wait for room, within the deadline
            started = loop.time()
            try:
                await self._room(timeout)
            except TimeoutError as exc:
                self._write_timed_out()
                raise BackendTimeout(
                    f"{self.label}: {method} not written within {timeout:g}s: the server is not reading its input"
                ) from exc
            left = max(timeout - (loop.time() - started), 0.0)
        elif self._write_timeouts:
            self._write_timeouts = 0
        future: asyncio.Future[Message] = loop.create_future()
        self._pending[our_id] = future
        # One timer on the future itself: asyncio.wait_for would add a second future and a callback.
        timer = loop.call_later(left, _expire, future)
        try:
            self._write(message)
            return await future
        except TimeoutError as exc:
            self._cancel_upstream(our_id, "timeout")
            raise BackendTimeout(f"{self.label}: no answer to {method} within {timeout:g}s") from exc
        except asyncio.CancelledError:
            self._cancel_upstream(our_id, "client went away")
            raise
        finally:
            timer.cancel()
            self._pending.pop(our_id, None)

    def _backlogged(self) -> bool:
        """More unwritten bytes than the pipe transport's high-water mark: the process is not reading."""
        return self._stdin is not None and self._stdin.backlogged()

    async def _room(self, timeout: float) -> None:
        """Wait until the pipe takes writes again; TimeoutError after `timeout` seconds."""
        assert self._stdin is not None
        try:
            async with asyncio.timeout(timeout):
                await self._stdin.drain()
        except (ConnectionError, RuntimeError) as exc:  # the process went away meanwhile
            raise BackendUnavailable(f"{self.label}: write failed: {exc}", delivered=False) from exc
        self._write_timeouts = 0

    def _write_timed_out(self) -> None:
        self._write_timeouts += 1
        if self._write_timeouts < WEDGED_AFTER or (self._restarting and not self._restarting.done()):
            return
        log.warning(
            "%s: the server has not read its input for %d calls in a row; restarting it",
            self.label,
            self._write_timeouts,
        )
        self._write_timeouts = 0
        self._restarting = asyncio.get_running_loop().create_task(self._kill())  # the supervisor restarts it

    def _cancel_upstream(self, our_id: int, reason: str) -> None:
        """Queued, never awaited: the answer to the client does not wait for the server's pipe."""
        with contextlib.suppress(BackendUnavailable):
            self._write(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": our_id, "reason": reason},
                }
            )

    async def notify(self, method: str, params: Any = None) -> None:
        message: Message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self.respond(message)

    async def respond(self, message: Message) -> None:
        """Send a notification, or a client's answer to a server-initiated request."""
        if self._backlogged():
            try:
                await self._room(MESSAGE_WAIT)
            except TimeoutError as exc:
                raise BackendUnavailable(
                    f"{self.label}: not written within {MESSAGE_WAIT:g}s: the server is not reading its input",
                    delivered=False,
                ) from exc
        self._write(message)


def _expire(future: asyncio.Future[Message]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The gateway's environment without its own `PAYGATE_*` settings: the wrapped server has no use for
    them, and they include secrets (the admin key, webhook and Stripe secrets, a Redis password)."""
    return {name: value for name, value in environ.items() if not name.startswith("PAYGATE_")}
