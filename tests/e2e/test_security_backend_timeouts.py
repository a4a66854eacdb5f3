"""A stdio server that stops reading its stdin cannot hold calls past their timeout (issue 11, item 8):
the real CLI wrapping tests/servers/stalling_server.py, whose pipe fills once its handshake is done."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import PYTHON, ROOT, running_gateway, wait_until, write_config

STALLING_SERVER = str(ROOT / "tests" / "servers" / "stalling_server.py")
TIMEOUT = 3.0
MARGIN = 2.0
TOOL_TIMEOUT = -32004


async def timed_call(
    client: httpx.AsyncClient, key: str, msg_id: int, **arguments: Any
) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    body = {"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": {"name": "add", "arguments": arguments}}
    resp = await client.post("/mcp", json=body, headers={"X-API-Key": key})
    assert resp.status_code == 200, resp.text
    return resp.json(), time.monotonic() - started


async def test_a_stdio_server_that_stops_reading_cannot_stall_calls_past_their_timeout(tmp_path: Path) -> None:
    once = tmp_path / "stalled-once"  # only the first process stalls: its replacement serves normally
    config = write_config(
        tmp_path,
        {
            "serverCommand": PYTHON,
            "serverArgs": [STALLING_SERVER, str(once)],
            "toolTimeoutSeconds": TIMEOUT,
            "refundOnFailure": True,
            "globalRateLimitPerMin": 0,
        },
    )
    with running_gateway("--config", config) as gw:
        key = gw.create_key(100)
        async with httpx.AsyncClient(base_url=gw.url, timeout=TIMEOUT * 10) as client:
            # 600 KB more than the pipe (64 KB) and the write buffer's high-water mark (64 KB) hold. It is
            # written (the pipe had room when it came), so it waits for an answer, not for room: alone, so
            # that exactly the three calls below count as not written (a second call racing it might or
            # might not find the pipe full, and make the restart come one call early).
            reply, took = await timed_call(client, key, 1, a=1, b=2, pad="x" * 600_000)
            assert reply["error"]["code"] == TOOL_TIMEOUT and took < TIMEOUT + MARGIN, (reply, took)
            assert "no answer" in reply["error"]["message"]
            # The pipe is full now: each call waits for room until its own deadline, then answers.
            stuck = await asyncio.gather(*(timed_call(client, key, 10 + i, a=i, b=i) for i in range(3)))
            for reply, took in stuck:
                assert reply["error"]["code"] == TOOL_TIMEOUT and took < TIMEOUT + MARGIN, (reply, took)
                assert "not reading its input" in reply["error"]["message"]
        assert gw.balance(key) == 100  # every timeout refunded (refundOnFailure)
        # Three calls in a row could not be written: the server is taken for hung and restarted.
        wait_until(lambda: "restarting it" in gw.stderr(), 10, "the hung server to be restarted")
        wait_until(lambda: "result" in gw.call_tool("add", {"a": 2, "b": 3}, key), 30, "the new server to answer")
        assert gw.balance(key) == 99
