"""Remote mode (`--remote-url`): the gateway in front of Streamable HTTP servers.

Backends: our echo server (the official Python SDK, JSON answers), server-everything in
streamableHttp mode (the official TypeScript SDK, SSE answers), and a recording backend that
shows exactly which requests and headers the gateway sends upstream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.recording_backend import RecordingBackend, recording_backend
from tests.support import (
    Gateway,
    echo_http_server,
    everything_http_server,
    running_gateway,
    text_of,
    usage_events,
    wait_until,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def echo_remote() -> Iterator[Gateway]:
    with (
        echo_http_server() as backend,
        running_gateway("--remote-url", backend.url, "--rate-limit", "0", "--tool-price", "add:2") as gw,
    ):
        yield gw


@pytest.fixture
def recorder() -> Iterator[tuple[Gateway, RecordingBackend]]:
    with recording_backend() as backend, running_gateway("--remote-url", backend.url, "--rate-limit", "0") as gw:
        yield gw, backend


# --- our echo server over HTTP ----------------------------------------------------------------


def test_remote_discovery_a_charged_call_and_blocking(echo_remote: Gateway) -> None:
    assert echo_remote.ready["transport"] == "http"
    tools = {t["name"]: t for t in echo_remote.rpc("tools/list").json()["result"]["tools"]}
    assert {"echo", "add", "slow"} <= set(tools)
    assert tools["add"]["_pricing"]["creditsPerCall"] == 2

    key = echo_remote.create_key(3, name="remote-echo")
    reply = echo_remote.rpc("tools/call", {"name": "add", "arguments": {"a": 40, "b": 2}}, key=key)
    assert reply.headers["x-credits-remaining"] == "1"
    assert reply.json()["result"]["structuredContent"] == {"result": 42}
    assert text_of(echo_remote.call_tool("echo", {"text": "über"}, key)) == "über"
    assert echo_remote.balance(key) == 0
    denied = echo_remote.call_tool("echo", {"text": "no"}, key)
    assert denied["error"]["code"] == -32402
    assert [e["allowed"] for e in usage_events(echo_remote, "remote-echo")] == [True, True, False]


async def test_remote_concurrent_calls_with_the_same_id_are_not_mixed_up(echo_remote: Gateway) -> None:
    n = 40
    key = echo_remote.create_key(2 * n)
    async with httpx.AsyncClient(base_url=echo_remote.url, timeout=30.0) as client:
        replies = await asyncio.gather(
            *(
                client.post(
                    "/mcp",
                    headers={"X-API-Key": key},
                    json={
                        "jsonrpc": "2.0",
                        "id": "same",
                        "method": "tools/call",
                        "params": {"name": "add", "arguments": {"a": i, "b": -7}},
                    },
                )
                for i in range(n)
            )
        )
    bodies = [r.json() for r in replies]
    assert [b["id"] for b in bodies] == ["same"] * n
    assert [b["result"]["structuredContent"]["result"] for b in bodies] == [i - 7 for i in range(n)]
    assert echo_remote.balance(key) == 0


# --- server-everything over Streamable HTTP (SSE answers) --------------------------------------


def test_a_tool_the_server_adds_while_running_is_listed_and_callable_once_the_server_says_so(
    echo_remote: Gateway,
) -> None:
    """The server announces the new tool on its session's GET stream, not on the call's answer."""
    key = echo_remote.create_key(5)
    assert text_of(echo_remote.call_tool("grow", {"name": "sprout"}, key)) == "added sprout"

    def listed() -> bool:
        return "sprout" in {t["name"] for t in echo_remote.rpc("tools/list").json()["result"]["tools"]}

    wait_until(listed, 10, "the gateway to refresh its tool list")
    assert text_of(echo_remote.call_tool("sprout", {}, key)) == "sprout works"
    assert echo_remote.balance(key) == 3


def test_everything_over_http_with_sse_answers() -> None:
    with (
        everything_http_server() as backend,
        running_gateway("--remote-url", backend.url, "--rate-limit", "0", "--tool-price", "get-sum:4") as gw,
    ):
        tools = {t["name"]: t for t in gw.rpc("tools/list").json()["result"]["tools"]}
        assert {"echo", "get-sum"} <= set(tools)
        assert tools["get-sum"]["_pricing"]["creditsPerCall"] == 4
        key = gw.create_key(5)
        assert "The sum of 19 and 23 is 42" in text_of(gw.call_tool("get-sum", {"a": 19, "b": 23}, key))
        assert "sse works" in text_of(gw.call_tool("echo", {"message": "sse works"}, key))
        assert gw.balance(key) == 0
        assert gw.call_tool("echo", {"message": "x"}, key)["error"]["code"] == -32402
        # a client that only accepts SSE gets an SSE answer from the gateway as well
        resp = gw.client.post(
            "/mcp", headers={"Accept": "text/event-stream"}, json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"}
        )
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.text.startswith("event: message\ndata: ") and '"get-sum"' in resp.text


# --- the recording backend: what exactly goes upstream -----------------------------------------


def test_client_credentials_are_never_forwarded(recorder: tuple[Gateway, RecordingBackend]) -> None:
    gw, backend = recorder
    key = gw.create_key(10)
    secret_headers = {"X-Admin-Key": gw.admin_key, "Authorization": f"Bearer {key}", "Cookie": "sid=secret"}
    resp = gw.rpc("tools/call", {"name": "headers", "arguments": {}}, key=key, headers=secret_headers)
    seen = set(text_of(resp.json()).split(","))
    assert "mcp-session-id" in seen
    assert not seen & {"x-api-key", "x-admin-key", "authorization", "cookie"}
    assert gw.balance(key) == 9

    for request in backend.requests:
        assert not {"x-api-key", "x-admin-key", "authorization", "cookie"} & set(request.headers), request
        assert key not in str(request.headers) and gw.admin_key not in str(request.headers)
        if request.method == "POST" and request.body.get("method") != "initialize":
            assert request.headers["mcp-session-id"] == backend.session_id


def test_sse_answers_with_interleaved_notifications(recorder: tuple[Gateway, RecordingBackend]) -> None:
    gw, backend = recorder
    key = gw.create_key(3)
    replies = [gw.call_tool("shout", {"text": f"call {i}"}, key, msg_id=f"c{i}") for i in range(3)]
    assert [r["id"] for r in replies] == ["c0", "c1", "c2"]
    assert [text_of(r) for r in replies] == ["CALL 0", "CALL 1", "CALL 2"]
    calls = [r.body for r in backend.requests if r.method == "POST" and r.body.get("method") == "tools/call"]
    assert len(calls) == 3
    assert len({c["id"] for c in calls}) == 3  # the gateway numbers upstream requests itself
    assert gw.balance(key) == 0


def test_server_discover_is_answered_by_the_gateway(recorder: tuple[Gateway, RecordingBackend]) -> None:
    """The gateway speaks the handshake era; a 2026-07-28 probe must not reach a modern backend."""
    gw, backend = recorder
    key = gw.create_key(1)
    for api_key in (key, None):
        reply = gw.rpc("server/discover", {"protocolVersion": "2026-07-28"}, key=api_key).json()
        assert reply["error"]["code"] == -32601
    assert "server/discover" not in backend.methods()
    assert gw.balance(key) == 1


def test_the_session_stream_is_asked_for_once_from_a_server_that_offers_none(
    recorder: tuple[Gateway, RecordingBackend],
) -> None:
    gw, backend = recorder
    wait_until(lambda: "GET" in backend.methods(), 10, "the gateway to ask for the session's GET stream")
    get = next(r for r in backend.requests if r.method == "GET")
    assert get.headers["accept"] == "text/event-stream"
    assert get.headers["mcp-session-id"] == backend.session_id
    key = gw.create_key(1)
    assert text_of(gw.call_tool("shout", {"text": "still here"}, key)) == "STILL HERE"
    assert backend.methods().count("GET") == 1  # it answered 405: not asked again


def test_upstream_session_is_deleted_on_shutdown(recorder: tuple[Gateway, RecordingBackend]) -> None:
    gw, backend = recorder
    assert backend.methods()[:3] == ["initialize", "notifications/initialized", "tools/list"]
    assert not [r for r in backend.requests if r.method == "DELETE"]
    assert gw.stop() == 0
    deletes = [r for r in backend.requests if r.method == "DELETE"]
    assert len(deletes) == 1
    assert deletes[0].headers["mcp-session-id"] == backend.session_id


def test_unsolicited_client_answers_and_cancels_stay_out_of_the_upstream_session(
    recorder: tuple[Gateway, RecordingBackend],
) -> None:
    gw, backend = recorder
    wait_until(lambda: "GET" in backend.methods(), 10, "the gateway to ask for the session's GET stream")
    before = len(backend.requests)
    for message in (
        {"jsonrpc": "2.0", "id": 1, "result": {"role": "assistant"}},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
    ):
        assert gw.client.post("/mcp", json=message).status_code == 202
    assert gw.rpc("ping").status_code == 200  # the gateway answers pings itself
    assert len(backend.requests) == before
