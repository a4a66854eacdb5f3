"""A minimal Redis connection on the event loop, for the hot path's charges only.

The charge writer sends one script per batch and awaits its reply; doing that on the loop itself, rather
than through a thread, costs no thread wake-ups and no GIL hand-offs per batch (measured: a thread added
~1 ms per call at one connection). Only what the writer needs: commands out, replies back in order
(simple strings, errors, integers, bulk strings, arrays), AUTH and SELECT from the URL, TLS for
`rediss://`, unix sockets. Everything else in the store uses redis-py.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, cast

from redis.connection import parse_url


class ReplyError(Exception):
    """Redis answered `-ERR …` (a script error, NOSCRIPT, a refused AUTH)."""


class NotServing(ConnectionError):
    """Redis refused the command for a passing state, before it wrote anything: still loading its data
    after a restart (`LOADING`), another script running too long (`BUSY`), out of memory (`OOM`: a
    script fails at its first write), a replica cut off from its master or mid-failover (`MASTERDOWN`,
    `READONLY`, `TRYAGAIN`). A link error to the writer: it backs off and tries again, as when the
    connection itself is lost."""


# The error codes that mean NotServing (the first word of the reply)
NOT_SERVING = frozenset({"LOADING", "BUSY", "OOM", "MASTERDOWN", "READONLY", "TRYAGAIN"})


def reply_error(line: str) -> Exception:
    return (NotServing if line.split(" ", 1)[0] in NOT_SERVING else ReplyError)(line)


def encode(args: tuple[str | bytes, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Incomplete(Exception):
    pass


def _parse(buf: bytearray, pos: int) -> tuple[Any, int]:
    """One reply from `buf` at `pos`: (value, next position); _Incomplete until all of it has arrived."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line = buf[pos : pos + 1], bytes(buf[pos + 1 : end])
    pos = end + 2
    if kind == b"+":
        return line.decode(), pos
    if kind == b"-":
        return reply_error(line.decode(errors="replace")), pos
    if kind == b":":
        return int(line), pos
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return bytes(buf[pos : pos + size]), pos + size + 2
    if kind == b"*":
        count = int(line)
        items = []
        for _ in range(max(count, 0)):
            item, pos = _parse(buf, pos)
            items.append(item)
        return (items if count >= 0 else None), pos
    raise ReplyError(f"unexpected reply type {kind!r}")


class RespConnection(asyncio.Protocol):
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes

    def data_received(self, data: bytes) -> None:
        self._buf += data
        pos = 0
        while self._waiting:
            try:
                value, pos = _parse(self._buf, pos)
            except _Incomplete:
                break
            waiter = self._waiting.popleft()
            if not waiter.done():
                if isinstance(value, Exception):
                    waiter.set_exception(value)
                else:
                    waiter.set_result(value)
        del self._buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("redis closed the connection")
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError(f"redis connection lost: {self.lost}"))
        self.transport = None

    async def call(self, *args: str | bytes, timeout: float = 2.0) -> Any:
        """Send one command, await its reply. A timeout closes the connection: the reply is lost."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("redis connection closed")
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self.transport.write(encode(args))
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            self.close()
            raise

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(url: str, timeout: float = 1.0) -> RespConnection:
    """A connection to the server of a redis://, rediss:// or unix:// URL, authenticated, on its db."""
    options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    loop = asyncio.get_running_loop()
    if "path" in options:
        make = loop.create_unix_connection(RespConnection, options["path"])
    else:
        tls = ssl.create_default_context() if url.startswith("rediss://") else None
        make = loop.create_connection(
            RespConnection, options.get("host", "localhost"), int(options.get("port", 6379)), ssl=tls
        )
    _, conn = await asyncio.wait_for(make, timeout)
    try:
        if options.get("password"):
            user = options.get("username")
            await conn.call("AUTH", *((user,) if user else ()), options["password"], timeout=timeout)
        if options.get("db"):
            await conn.call("SELECT", str(options["db"]), timeout=timeout)
    except BaseException:
        conn.close()
        raise
    return conn
