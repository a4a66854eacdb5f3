"""The answer channel of one POST to /mcp: JSON by default, SSE once the server has more to say.

A POST's answer is decided late. While its requests are in flight, a server message that belongs
to them (progress, a log line, a sampling or elicitation request) turns the answer into an SSE
stream, if the client accepts one: the headers go out, then those messages as they come, then
the JSON-RPC answers, then the end. A POST that hears nothing from the server stays a plain JSON
answer, so the common call pays nothing for this. Quiet stretches get keep-alive comments.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
HeaderSource = Callable[[], list[tuple[bytes, bytes]]]

SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]
KEEPALIVE_SECONDS = 15.0
QUEUE_LIMIT = 1024  # frames buffered for a slow reader; beyond that the POST stops streaming extras


def sse_frame(message: Any) -> bytes:
    return b"event: message\ndata: " + orjson.dumps(message) + b"\n\n"


class PostChannel:
    def __init__(self, send: Send, accepts_sse: bool, headers: HeaderSource) -> None:
        self._send = send
        self._headers = headers
        self.open = accepts_sse  # may it still turn into a stream?
        self._frames: asyncio.Queue[bytes | None] | None = None
        self._writer: asyncio.Task[None] | None = None

    @property
    def streaming(self) -> bool:
        return self._writer is not None

    def push(self, message: Any) -> bool:
        """Send a server message on this POST's stream (opening it); False if it cannot carry it."""
        if not self.open:
            return False
        if self._frames is None:
            self._frames = asyncio.Queue(QUEUE_LIMIT)
            self._writer = asyncio.get_running_loop().create_task(self._write(self._headers()))
        if self._frames.full():
            return False
        self._frames.put_nowait(sse_frame(message))
        return True

    def close(self) -> None:
        """The answer goes out as plain JSON: no more server messages on this POST."""
        self.open = False

    async def finish(self, final: Any | None) -> None:
        """Send the JSON-RPC answer (None for none) as the last event and end the stream."""
        self.open = False
        assert self._frames is not None and self._writer is not None
        if final is not None:
            await self._frames.put(sse_frame(final))
        await self._frames.put(None)
        await self._writer

    async def abandon(self) -> None:
        """The client went away: stop writing."""
        self.open = False
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write(self, headers: list[tuple[bytes, bytes]]) -> None:
        assert self._frames is not None
        await self._send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
        while True:
            try:
                frame = await asyncio.wait_for(self._frames.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await self._send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
                continue
            if frame is None:
                break
            await self._send({"type": "http.response.body", "body": frame, "more_body": True})
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})
