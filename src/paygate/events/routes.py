"""The admin event stream: GET /admin/events, Server-Sent Events for admin clients (viewer role).

`event: connected` first, then `event: audit` with the audit-entry JSON of every event published
(optionally only `?types=`), and a `: keepalive` comment after `keepAliveSeconds` (default 15) of
silence. Fan-out is `events/stream.EventStreamHub`, an inline subscriber of the bus that the
composition root builds and wires (compose/events.py); a full or closing hub refuses with 429 / 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from paygate.api.common import AdminGuard
from paygate.api.query import TypesQuery, parse_types
from paygate.asgi import Receive, Scope, Send
from paygate.audit.service import event_json
from paygate.events.hub import Event
from paygate.events.stream import EventStreamHub, StreamClient

KEEPALIVE_SECONDS = 15  # the reference's interval
KEEPALIVE = b": keepalive\n\n"
KeepAliveQuery = Annotated[
    int, Query(alias="keepAliveSeconds", ge=1, le=60, description="seconds of silence before a keep-alive comment")
]


def frame(event: str, data: Any) -> bytes:
    # orjson never emits a newline, so the JSON is one `data:` line. default=str: as the audit log.
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data, default=str) + b"\n\n"


def audit_frame(event: Event) -> bytes:
    return frame("audit", event_json(event))


class EventStreamResponse(Response):
    """Streams one hub client until the client disconnects, falls too far behind, or the hub closes it."""

    def __init__(self, hub: EventStreamHub, client: StreamClient, types: tuple[str, ...], keepalive: float) -> None:
        super().__init__(media_type="text/event-stream")
        self.hub, self.client, self.types, self.keepalive = hub, client, types, keepalive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client
        disconnected = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            connected = {"message": "Admin event stream connected", "filters": list(self.types) or "all"}
            await send({"type": "http.response.body", "body": frame("connected", connected), "more_body": True})
            while not client.ended:
                getter = asyncio.ensure_future(client.queue.get())
                done, _ = await asyncio.wait(
                    {getter, disconnected}, timeout=self.keepalive, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    if disconnected in done or client.ended:
                        break
                    await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
                    continue
                event = getter.result()
                if event is None or client.ended or disconnected.done():
                    break
                await send({"type": "http.response.body", "body": audit_frame(event), "more_body": True})
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            # Always leave the hub, whatever ended the stream (the client was opened by the route).
            self.hub.close(client)
            disconnected.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def router(guard: AdminGuard, hub: EventStreamHub) -> APIRouter:
    r = guard.router("admin events")

    @r.get("/admin/events", response_model=None)
    async def events(types: TypesQuery = None, keepalive: KeepAliveQuery = KEEPALIVE_SECONDS) -> Response:
        """Server-Sent Events: `connected`, then every published event as `audit` (its audit-entry JSON),
        optionally only `types`; a keep-alive comment after `keepAliveSeconds` without one."""
        names = parse_types(types)
        return EventStreamResponse(hub, hub.open(names), names, keepalive)

    return r
