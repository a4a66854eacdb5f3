"""The admin event stream through the real CLI: GET /admin/events (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway
from tests.support import ECHO_COMMAND, GatewayClient, masked, start_gateway, wait_until

Frame = tuple[str, Any]  # ("connected" | "audit", data) or ("comment", text)


class EventStream:
    """An open /admin/events response, read frame by frame."""

    def __init__(self, client: httpx.AsyncClient, response: httpx.Response) -> None:
        self.client = client
        self.response = response
        self._lines = response.aiter_lines()

    @classmethod
    async def open(
        cls, gw: GatewayClient, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> EventStream:
        client = httpx.AsyncClient(base_url=gw.url, timeout=httpx.Timeout(30.0, read=None))
        request = client.build_request("GET", "/admin/events", params=params, headers=headers or gw.admin())
        return cls(client, await client.send(request, stream=True))

    async def next(self, timeout: float = 20.0) -> Frame | None:
        """The next frame, or None when the stream has ended."""
        deadline = time.monotonic() + timeout
        event, data = "", ""
        while True:
            try:
                line = await asyncio.wait_for(anext(self._lines), max(0.01, deadline - time.monotonic()))
            except StopAsyncIteration:
                return None
            except TimeoutError:
                raise AssertionError(f"no frame within {timeout}s") from None
            if line.startswith(":"):
                return "comment", line[1:].strip()
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and event:
                return event, json.loads(data)

    async def next_audit(
        self, where: Callable[[dict[str, Any]], bool] = lambda e: True, timeout: float = 20.0
    ) -> dict[str, Any]:
        """The next `audit` event matching `where` (skipping others and keep-alives)."""
        deadline = time.monotonic() + timeout
        while True:
            got = await self.next(max(0.01, deadline - time.monotonic()))
            assert got is not None, "the stream ended"
            if got[0] == "audit" and where(got[1]):
                return dict(got[1])

    async def close(self) -> None:
        await self.response.aclose()
        await self.client.aclose()


@asynccontextmanager
async def streaming(
    gw: InProcessGateway, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[EventStream]:
    stream = await EventStream.open(gw, params, headers)
    try:
        yield stream
    finally:
        await stream.close()


def opens(gw: InProcessGateway) -> int:
    """The status of a new stream, closed at once."""
    with gw.client.stream("GET", "/admin/events", headers=gw.admin(), params={"types": "x.none"}) as resp:
        return resp.status_code


async def test_a_stream_says_connected_then_carries_admin_and_gate_events(gw: InProcessGateway) -> None:
    async with streaming(gw) as stream:
        resp = stream.response
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-cache" and resp.headers["x-accel-buffering"] == "no"
        assert await stream.next() == ("connected", {"message": "Admin event stream connected", "filters": "all"})
        raw = gw.create_key(5, name="sse-agent")
        created = await stream.next_audit(lambda e: e["type"] == "key.created")
        assert created["actor"] == "admin" and created["message"] == "Key created: sse-agent"
        assert created["metadata"]["keyMasked"] == masked(raw) and created["timestamp"].endswith("Z")
        call = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, key=raw)
        allowed = await stream.next_audit(lambda e: e["type"] == "gate.allow")
        assert allowed["metadata"]["requestId"] == call.headers["x-request-id"]
        assert allowed["actor"] == masked(raw) and allowed["message"] == "Allowed: echo"
        assert allowed["id"] > created["id"]
        assert raw not in json.dumps([created, allowed])
        logged = gw.client.get("/requests", headers=gw.admin(), params={"key": masked(raw)}).json()
        assert logged["requests"][0]["id"] == allowed["id"]  # one id per event, everywhere


async def test_types_filter_the_stream(gw: InProcessGateway) -> None:
    async with streaming(gw, {"types": "key.created, key.topup"}) as stream:
        assert await stream.next() == (
            "connected",
            {"message": "Admin event stream connected", "filters": ["key.created", "key.topup"]},
        )
        raw = gw.create_key(1)
        gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, key=raw)
        gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": raw})
        marker = gw.create_key(1, name="after")
        seen = [await stream.next_audit(), await stream.next_audit()]
        assert [(e["type"], e["metadata"]["keyMasked"]) for e in seen] == [
            ("key.created", masked(raw)),
            ("key.created", masked(marker)),
        ]


async def test_a_quiet_stream_gets_keep_alive_comments(gw: InProcessGateway) -> None:
    async with streaming(gw, {"keepAliveSeconds": "1", "types": "no.such_event"}) as stream:
        assert (await stream.next() or ("",))[0] == "connected"
        assert await stream.next(timeout=10) == ("comment", "keepalive")
        assert await stream.next(timeout=10) == ("comment", "keepalive")


async def test_every_connected_client_gets_every_event(gw: InProcessGateway) -> None:
    async with streaming(gw) as one, streaming(gw) as two:
        assert (await one.next() or ("",))[0] == (await two.next() or ("",))[0] == "connected"
        raw = gw.create_key(2, name="fan-out")

        def mine(e: dict[str, Any]) -> bool:
            return bool(e["type"] == "key.created" and e["metadata"]["keyMasked"] == masked(raw))

        assert await one.next_audit(mine) == await two.next_audit(mine)


@pytest.mark.parametrize(
    "params",
    [
        {"types": ","},
        {"types": "key.created,bad type"},
        {"types": ",".join(f"t{i}" for i in range(51))},
        {"keepAliveSeconds": "0"},
        {"keepAliveSeconds": "61"},
        {"keepAliveSeconds": "soon"},
    ],
)
async def test_bad_parameters_are_400_and_open_no_stream(gw: InProcessGateway, params: dict[str, str]) -> None:
    async with streaming(gw) as watcher:
        assert (await watcher.next() or ("",))[0] == "connected"
        resp = gw.client.get("/admin/events", headers=gw.admin(), params=params)
        assert resp.status_code == 400 and resp.json()["error"].startswith("Invalid request")
        raw = gw.create_key(1, name="after-400")
        event = await watcher.next_audit(lambda e: e["type"] != "gate.allow")
        assert event["type"] == "key.created" and event["metadata"]["keyMasked"] == masked(raw)


async def test_non_admins_are_refused_and_a_viewer_may_watch(gw: InProcessGateway) -> None:
    viewer = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "sse viewer", "role": "viewer"})
    async with streaming(gw, headers={"X-Admin-Key": viewer.json()["key"]}) as stream:
        assert stream.response.status_code == 200 and (await stream.next() or ("",))[0] == "connected"
        raw = gw.create_key(1)
        for headers in ({}, {"X-Admin-Key": "wrong"}, {"X-API-Key": raw}):
            resp = gw.client.get("/admin/events", headers=headers)
            assert resp.status_code == 401 and resp.headers["content-type"].startswith("application/json")
            failed = await stream.next_audit(lambda e: e["type"] == "admin.auth_failed")
            assert failed["metadata"]["path"] == "/admin/events"


async def test_at_most_twenty_streams_are_open_and_a_closed_one_frees_its_slot(gw: InProcessGateway) -> None:
    held: list[EventStream] = []
    try:
        while len(held) < 20:
            # Another test's stream may take a moment to be noticed closed: retry a refused slot.
            stream = await EventStream.open(gw, {"types": "x.none"})
            if stream.response.status_code == 200:
                held.append(stream)
                continue
            await stream.close()
            wait_until(lambda: opens(gw) == 200, what="a free stream slot")
        refused = gw.client.get("/admin/events", headers=gw.admin())
        assert refused.status_code == 429 and "Too many admin event streams" in refused.json()["error"]
        await held.pop().close()
        wait_until(lambda: opens(gw) == 200, what="the closed stream's slot")
    finally:
        for stream in held:
            await stream.close()


@pytest.mark.e2e  # a real SIGTERM to a real process
async def test_streams_end_promptly_when_the_gateway_stops() -> None:
    gw = start_gateway("--server", ECHO_COMMAND)
    try:
        stream = await EventStream.open(gw)
        try:
            assert (await stream.next() or ("",))[0] == "connected"
            started = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            while await stream.next(timeout=15) is not None:  # whatever is left, then the end
                pass
            assert time.monotonic() - started < 10  # uvicorn would wait 30 s for an open stream
        finally:
            await stream.close()
        assert gw.stop(timeout=15) == 0
    finally:
        gw.stop()
