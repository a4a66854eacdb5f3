"""The answer channel of one POST to /mcp: JSON by default, SSE once the server has more to say.

A POST's answer is decided late. While its requests are in flight, a server message that belongs
to them (progress, a log line, a sampling or elicitation request) turns the answer into an SSE
stream, if the client accepts one: the headers go out, then those messages as they come, then
the JSON-RPC answers, then the end. A POST that hears nothing from the server stays a plain JSON
answer, so the common call pays nothing for this. Quiet stretches get keep-alive comments.

Within a session the stream is resumable (replay.py): its events carry ids, and if the client goes
away mid-stream the call goes on (`detach`); what follows is kept for a `GET` with `Last-Event-ID`.
Clients of 2025-11-25 get a priming event (an id, no data) first, so they can resume even before
the first message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from paygate.mcp.replay import KEEPALIVE_SECONDS, EventLog, frame

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
HeaderSource = Callable[[], list[tuple[bytes, bytes]]]

SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
QUEUE_LIMIT = 1024  # frames buffered for a slow reader; beyond that the POST stops streaming extras


class PostChannel:
    def __init__(
        self, send: Send, accepts_sse: bool, headers: HeaderSource, log: EventLog | None = None, priming: bool = False
    ) -> None:
        self._send = send
        self._headers = headers
        self.open = accepts_sse  # may it still turn into a stream?
        self._log = log  # the session's: ids and replay; None without a session
        self._priming = priming
        self._stream = 0
        self._frames: asyncio.Queue[bytes | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.detached = False  # the client went away; events are only kept for a resume

    @property
    def streaming(self) -> bool:
        return self._frames is not None

    @property
    def resumable(self) -> bool:
        """Streaming within a session: a client that lost it may come back for the rest."""
        return self._frames is not None and self._log is not None

    def push(self, message: Any) -> bool:
        """Send a server message on this POST's stream (opening it); False if it cannot carry it."""
        if not self.open:
            return False
        if self._frames is None:
            self._frames = asyncio.Queue(QUEUE_LIMIT)
            if self._log is not None:
                self._stream = self._log.open_stream()
            self._writer = asyncio.get_running_loop().create_task(self._write(self._headers()))
        if self._frames.full():
            return False
        self._put(message)
        return True

    def _put(self, message: Any) -> None:
        assert self._frames is not None
        data = frame(message) if self._log is None else self._log.record(self._stream, message)
        if not self.detached:
            self._frames.put_nowait(data)

    def close(self) -> None:
        """The answer goes out as plain JSON: no more server messages on this POST."""
        self.open = False

    async def finish_if_streaming(self, final: Any | None) -> bool:
        """End the stream with the answer if this POST became one (True); else close the channel,
        and the caller sends the answer itself (False)."""
        if self._frames is None:
            self.close()
            return False
        await self.finish(final)
        return True

    async def finish(self, final: Any | None) -> None:
        """Send the JSON-RPC answer (None for none) as the last event and end the stream."""
        self.open = False
        assert self._frames is not None and self._writer is not None
        if final is not None:
            self._put(final)
        if self._log is not None:
            self._log.close_stream(self._stream)
        if self.detached:
            return
        await self._frames.put(None)
        await self._writer

    def detach(self) -> None:
        """The client went away from a resumable stream: stop writing, keep recording."""
        self.detached = True
        if self._writer is not None:
            self._writer.cancel()

    async def _write(self, headers: list[tuple[bytes, bytes]]) -> None:
        assert self._frames is not None
        await self._send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
        if self._priming and self._log is not None:
            priming = f"id: {self._stream}-0\ndata: \n\n".encode()
            await self._send({"type": "http.response.body", "body": priming, "more_body": True})
        while True:
            try:
                data = await asyncio.wait_for(self._frames.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await self._send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
                continue
            if data is None:
                break
            await self._send({"type": "http.response.body", "body": data, "more_body": True})
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})
