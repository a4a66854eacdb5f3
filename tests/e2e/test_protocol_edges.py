"""Edges of the protocol through the real CLI, over stdio and over Streamable HTTP: clients whose
JSON-RPC ids and progress tokens collide, and a backend that dies in the middle of a streamed answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.support import ECHO_COMMAND, Gateway, echo_http_server, running_gateway, wait_until

pytestmark = pytest.mark.e2e


@contextmanager
def gateway(transport: str, *flags: str) -> Iterator[Gateway]:
    """The gateway in front of our echo server, over stdio or over Streamable HTTP (SSE answers)."""
    if transport == "stdio":
        with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", *flags) as gw:
            yield gw
        return
    with (
        echo_http_server(sse=True) as backend,
        running_gateway("--remote-url", backend.url, "--rate-limit", "0", *flags) as gw,
    ):
        yield gw


@pytest.fixture(scope="module", params=["stdio", "http"])
def gw(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    with gateway(request.param) as g:
        yield g


def open_session(gw: Gateway) -> str:
    resp = gw.rpc(
        "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    )
    return str(resp.headers["mcp-session-id"])


def sse_messages(body: str) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in body.splitlines() if line.startswith("data:")]


async def test_clients_using_the_same_ids_and_progress_tokens_each_get_their_own_answers(gw: Gateway) -> None:
    key = gw.create_key(100)
    sessions = [open_session(gw) for _ in range(3)]

    async def call(client: httpx.AsyncClient, session: str, n: int) -> tuple[str, list[dict[str, Any]]]:
        tool = "progress" if n % 2 else "echo"
        arguments = {"steps": 2 + n} if tool == "progress" else {"text": f"{session}-{n}"}
        resp = await client.post(
            "/mcp",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",  # every client uses id 1 and token "t"
                "params": {"name": tool, "arguments": arguments, "_meta": {"progressToken": "t"}},
            },
            headers={"Mcp-Session-Id": session, "X-API-Key": key, "Accept": "text/event-stream, application/json"},
        )
        messages = (
            sse_messages(resp.text) if resp.headers["content-type"].startswith("text/event-stream") else [resp.json()]
        )
        return f"{session}-{n}", messages

    async with httpx.AsyncClient(base_url=gw.url, timeout=30.0) as client:
        results = await asyncio.gather(*(call(client, s, n) for s in sessions for n in range(4)))
    for label, messages in results:
        n = int(label.rsplit("-", 1)[1])
        answer = messages[-1]
        assert answer["id"] == 1 and "result" in answer, answer
        progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
        if n % 2:  # its own steps, under its own token, and nobody else's
            assert answer["result"]["content"][0]["text"] == f"{2 + n} steps"
            assert [(p["progressToken"], p["progress"], p["total"]) for p in progress] == [
                ("t", step, 2 + n) for step in range(1, 3 + n)
            ]
        else:
            assert answer["result"]["content"][0]["text"] == label and progress == []
    assert gw.balance(key) == 100 - len(results)


@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("refund", [True, False], ids=["refund-on-failure", "no refund"])
def test_a_backend_dying_mid_stream_ends_the_stream_with_an_error_and_the_charge_follows_policy(
    transport: str, refund: bool
) -> None:
    with gateway(transport, *(["--refund-on-failure"] if refund else [])) as gw:
        key = gw.create_key(10)
        session = open_session(gw)
        resp = gw.client.post(
            "/mcp",
            json={
                "jsonrpc": "2.0",
                "id": "dying",
                "method": "tools/call",
                "params": {"name": "progress_then_crash", "arguments": {"steps": 2}, "_meta": {"progressToken": 7}},
            },
            headers={"Mcp-Session-Id": session, "X-API-Key": key, "Accept": "application/json, text/event-stream"},
            timeout=60,
        )
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        messages = sse_messages(resp.text)
        progress = [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"]
        assert progress == [1, 2]  # what the server said before it died reached the client, in order
        assert messages[-1]["id"] == "dying" and messages[-1]["error"]["code"] == -32003
        assert gw.balance(key) == (10 if refund else 9)
        if transport == "stdio":  # the process is restarted, and the gateway serves again
            wait_until(lambda: gw.client.get("/ready").status_code == 200, 30, "the backend restarted")
            assert gw.call_tool("echo", {"text": "back"}, key)["result"]["content"][0]["text"] == "back"
