"""A client's notifications/cancelled stops its own call: the server sees the cancellation under its own id.

Real CLI, our echo server over stdio and over Streamable HTTP. The server records each slow call it
began and each it saw cancelled (`slow_calls`, free here): a call cancelled there shows the gateway
passed the cancellation on with the id the server knows, not the client's. Each test cancels only
once the server has begun the call (a cancellation for a request not yet forwarded is ignored).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.support import ECHO_COMMAND, Gateway, echo_http_server, running_gateway, text_of, wait_until

pytestmark = pytest.mark.e2e
FREE_PROBE = ("--tool-price", "slow_calls:0")


@pytest.fixture(scope="module", params=["stdio", "http"])
def gw(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    if request.param == "stdio":
        with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", *FREE_PROBE) as gateway:
            yield gateway
    else:
        with (
            echo_http_server() as server,
            running_gateway("--remote-url", server.url, "--rate-limit", "0", *FREE_PROBE) as gateway,
        ):
            yield gateway


def open_session(gw: Gateway) -> str:
    resp = gw.rpc(
        "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    )
    return str(resp.headers["mcp-session-id"])


def slow_calls(gw: Gateway, key: str) -> tuple[list[str], list[str]]:
    started, cancelled = text_of(gw.call_tool("slow_calls", {}, key)).split(";")
    return started.removeprefix("started:").split(","), cancelled.removeprefix("cancelled:").split(",")


def call_in_background(gw: Gateway, key: str, session: str, msg_id: str, seconds: float) -> dict[str, Any]:
    box: dict[str, Any] = {}

    def run() -> None:
        resp = gw.rpc(
            "tools/call",
            {"name": "slow", "arguments": {"seconds": seconds}},
            key=key,
            msg_id=msg_id,
            headers={"Mcp-Session-Id": session},
        )
        box.update(resp.json() if resp.content else {}, status=resp.status_code)

    box["thread"] = threading.Thread(target=run, daemon=True)
    box["thread"].start()
    wait_until(lambda: f"{seconds:g}" in slow_calls(gw, key)[0], what="the server to begin the call")
    return box


def cancel(gw: Gateway, session: str, msg_id: str, key: str) -> int:
    """With the key: the call bound the session to it, and only that key may act on it."""
    resp = gw.client.post(
        "/mcp",
        headers={"Mcp-Session-Id": session, "X-API-Key": key},
        json={"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": msg_id, "reason": "user"}},
    )
    return resp.status_code


def test_a_clients_cancellation_stops_its_call_and_reaches_the_server_under_the_servers_id(gw: Gateway) -> None:
    key = gw.create_key(10)
    session = open_session(gw)
    box = call_in_background(gw, key, session, "call-1", 31)
    assert cancel(gw, session, "call-1", key) == 202
    box["thread"].join(20)  # without the cancellation it would take 31 s
    assert not box["thread"].is_alive()
    # "Receivers of cancellation notifications SHOULD NOT send a response": the POST ends with none
    assert box["status"] == 202 and "error" not in box and "result" not in box
    assert gw.balance(key) == 9  # charged: without --refund-on-failure a cancelled call is not refunded
    wait_until(lambda: "31" in slow_calls(gw, key)[1], what="the server to see the cancellation")


def test_another_session_cannot_cancel_a_call_by_naming_its_id(gw: Gateway) -> None:
    key = gw.create_key(10)
    mine, other = open_session(gw), open_session(gw)
    box = call_in_background(gw, key, mine, "call-2", 1.5)
    assert cancel(gw, other, "call-2", key) == 202  # accepted, and ignored: not that session's call
    box["thread"].join(20)
    assert text_of(box) == "slept 1.5"
    assert "1.5" not in slow_calls(gw, key)[1]


def test_a_cancelled_call_is_refunded_under_the_refund_policy() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--refund-on-failure", *FREE_PROBE) as gw:
        key = gw.create_key(5)
        session = open_session(gw)
        box = call_in_background(gw, key, session, "call-3", 32)
        cancel(gw, session, "call-3", key)
        box["thread"].join(20)
        assert box["status"] == 202 and "result" not in box
        assert gw.balance(key) == 5


def post_then_hang_up(gw: Gateway, body: dict[str, Any], headers: dict[str, str]) -> socket.socket:
    """Send a POST on a raw connection and leave it open; the caller closes it mid-call."""
    raw = orjson.dumps(body)
    lines = [
        "POST /mcp HTTP/1.1",
        f"Host: 127.0.0.1:{gw.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(raw)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    conn = socket.create_connection(("127.0.0.1", gw.port))
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + raw)
    return conn


@pytest.mark.parametrize("with_session", [True, False], ids=["in a session", "without a session"])
def test_a_client_that_hangs_up_mid_call_cancels_it_at_the_server_and_is_refunded_by_policy(with_session: bool) -> None:
    with running_gateway("--server", ECHO_COMMAND, "--refund-on-failure", *FREE_PROBE) as gw:
        key = gw.create_key(5)
        headers = {"X-API-Key": key, **({"Mcp-Session-Id": open_session(gw)} if with_session else {})}
        seconds = 33 if with_session else 34
        conn = post_then_hang_up(
            gw,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "slow", "arguments": {"seconds": seconds}},
            },
            headers,
        )
        wait_until(lambda: f"{seconds}" in slow_calls(gw, key)[0], what="the server to begin the call")
        assert gw.balance(key) == 4  # charged before the call was forwarded
        conn.close()
        wait_until(lambda: f"{seconds}" in slow_calls(gw, key)[1], what="the server to see the call cancelled")
        wait_until(lambda: gw.balance(key) == 5, what="the refund (--refund-on-failure)")
