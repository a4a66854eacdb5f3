"""A remote backend that misbehaves cannot hold a call past its timeout, nor keep a charge for an answer
that is not JSON (issue 11, items 8 and 9): the real gateway in-process against tests/misbehaving_http.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.misbehaving_http import MisbehavingServer
from tests.support import wait_until, write_config

TIMEOUT = 1.0
MARGIN = 2.0
TOOL_TIMEOUT = -32004
BACKEND_UNAVAILABLE = -32003


@pytest.fixture
def server() -> Iterator[MisbehavingServer]:
    with MisbehavingServer() as srv:
        yield srv


@pytest.fixture
def gw(server: MisbehavingServer, tmp_path: Path) -> Iterator[InProcessGateway]:
    config = write_config(
        tmp_path,
        {"remoteUrl": server.url, "toolTimeoutSeconds": TIMEOUT, "refundOnFailure": True, "globalRateLimitPerMin": 0},
    )
    with running_inprocess_gateway("--config", config) as gateway:
        yield gateway


async def timed_call(client: httpx.AsyncClient, key: str, tool: str, msg_id: int) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    body = {"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
    resp = await client.post("/mcp", json=body, headers={"X-API-Key": key})
    assert resp.status_code == 200, resp.text
    return resp.json(), time.monotonic() - started


async def test_a_backend_that_stops_answering_cannot_hold_a_call_past_its_timeout(
    gw: InProcessGateway, server: MisbehavingServer
) -> None:
    key = gw.create_key(10)
    async with httpx.AsyncClient(base_url=gw.url, timeout=TIMEOUT * 5) as client:
        hung = [asyncio.create_task(timed_call(client, key, "hang", i)) for i in range(3)]
        await asyncio.to_thread(wait_until, lambda: server.calls.count("hang") == 3, 5, "the calls to reach the server")
        reply, took = await timed_call(client, key, "add", 9)  # the others hang: this one is served at once
        assert "result" in reply and took < TIMEOUT, (reply, took)
        for reply, took in await asyncio.gather(*hung):
            assert reply["error"]["code"] == TOOL_TIMEOUT, reply
            assert took < TIMEOUT + MARGIN, took  # the cancellation sent upstream hangs too: not waited for
        # and after them, more calls meet the same fate, each within its own timeout
        for reply, took in await asyncio.gather(*(timed_call(client, key, "hang", 10 + i) for i in range(2))):
            assert reply["error"]["code"] == TOOL_TIMEOUT and took < TIMEOUT + MARGIN, (reply, took)
    wait_until(lambda: len(server.cancelled) >= 5, 10, "the server to be told of each timeout")
    assert gw.balance(key) == 9  # the timeouts refunded (refundOnFailure), the answered call charged


@pytest.mark.parametrize("tool", ["garbage", "sse_garbage"])
def test_an_answer_that_is_not_json_is_an_error_for_that_call_and_refunded(gw: InProcessGateway, tool: str) -> None:
    key = gw.create_key(5)
    started = time.monotonic()
    resp = gw.rpc("tools/call", {"name": tool, "arguments": {}}, key=key)
    assert resp.status_code == 200, resp.text  # a JSON-RPC error, not an HTTP 500
    error = resp.json()["error"]
    assert error["code"] == BACKEND_UNAVAILABLE and "JSON" in error["message"], error
    assert time.monotonic() - started < TIMEOUT  # at once, not at the tool timeout
    assert gw.balance(key) == 5
    assert "result" in gw.call_tool("add", {"a": 1, "b": 2}, key)  # the backend stays usable
    assert gw.balance(key) == 4
