"""`GET /mcp`: a session's server-to-client SSE stream, or the resumption of a lost one.

Without `Last-Event-ID` this is the session's standalone stream: list changes, and what the
server sends for this session that no POST could carry. With `Last-Event-ID` the client resumes
the stream that id came from (replay.py): the standalone stream from after that event, or a POST's
stream, replayed and then followed to its answer. An id the gateway no longer knows replays
nothing. `: keepalive` comments keep idle connections open through proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from paygate.mcp.replay import KEEPALIVE_SECONDS, STANDALONE, parse_event_id
from paygate.mcp.sessions import Session

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

STANDALONE_QUEUE = 256  # events buffered for a slow reader before the oldest are dropped


async def serve_stream(session: Session, last_event_id: bytes | None, receive: Receive, send: Send) -> None:
    resume = parse_event_id(last_event_id.decode("latin-1")) if last_event_id else None
    stream, after = resume if resume is not None else (STANDALONE, 0)
    missed, follow = session.log.resume(stream, after) if resume is not None else ([], None)
    queue: asyncio.Queue[bytes | None]
    if stream == STANDALONE:
        queue = asyncio.Queue(maxsize=STANDALONE_QUEUE)
        session.streams.add(queue)
        session.listened = True
    elif follow is not None:
        queue = follow  # a POST still in flight: the rest of it, its answer last
    else:
        queue = asyncio.Queue()
        queue.put_nowait(None)  # a POST already answered: the replay is all there is
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
                (b"mcp-session-id", session.id.encode()),
            ],
        }
    )
    disconnected = asyncio.get_running_loop().create_task(_wait_disconnect(receive))
    try:
        await send({"type": "http.response.body", "body": b": stream open\n\n", "more_body": True})
        for data in missed:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await _pump(queue, disconnected, send)
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        if stream == STANDALONE:
            session.streams.discard(queue)
        else:
            session.log.drop_follower(stream, queue)
        disconnected.cancel()


async def _pump(queue: asyncio.Queue[bytes | None], disconnected: asyncio.Task[None], send: Send) -> None:
    """Events from the queue until it says None or the client leaves; keep-alives while quiet."""
    while not disconnected.done():
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait(
            {getter, disconnected}, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if getter not in done:
            getter.cancel()
            if not disconnected.done():
                await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
            continue
        data = getter.result()
        if data is None:
            return
        await send({"type": "http.response.body", "body": data, "more_body": True})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
