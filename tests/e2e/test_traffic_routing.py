"""Canary, mirror and tool aliases through the real CLI: the primary is the echo server over stdio, the
canary and the shadow are tests/servers/routing_server.py processes over Streamable HTTP."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import (
    ECHO_COMMAND,
    Gateway,
    ServerProcess,
    free_port,
    running_gateway,
    start_server,
    text_of,
    wait_until,
)

pytestmark = pytest.mark.e2e


def routing_process(name: str) -> ServerProcess:
    port = free_port()
    return start_server([sys.executable, "-m", "tests.servers.routing_server", str(port), name], port)


@pytest.fixture(scope="module")
def canary() -> Iterator[ServerProcess]:
    server = routing_process("canary")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shadow() -> Iterator[ServerProcess]:
    server = routing_process("shadow")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "echo:2,add:5")
    with running_gateway(*args, env={"PAYGATE_TRAFFIC_ALLOW_PRIVATE": "true"}) as gateway:
        yield gateway


def control(server: ServerProcess, mode: str) -> None:
    base = server.url.removesuffix("/mcp")
    assert httpx.post(f"{base}/control", json={"mode": mode}, timeout=5).status_code == 200


def received(server: ServerProcess) -> list[dict[str, Any]]:
    return list(httpx.get(server.url.removesuffix("/mcp") + "/calls", timeout=5).json())


def admin(gw: Gateway, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return gw.client.request(method, path, json=body, headers=gw.admin())


def echo(gw: Gateway, key: str, text: str = "hi") -> str:
    return text_of(gw.call_tool("echo", {"text": text}, key))


def test_canary_weight_100_then_0_then_its_failures_roll_it_back(gw: Gateway, canary: ServerProcess) -> None:
    body = {"remoteUrl": canary.url, "weight": 100, "breakerThreshold": 2, "breakerCooldownSeconds": 600}
    resp = admin(gw, "POST", "/admin/canary", body)
    assert resp.status_code == 200, resp.text
    key = gw.create_key(100)
    assert [echo(gw, key) for _ in range(3)] == ["canary:hi"] * 3
    assert admin(gw, "PATCH", "/admin/canary", {"weight": 0}).status_code == 200
    assert [echo(gw, key) for _ in range(2)] == ["hi"] * 2
    assert gw.balance(key) == 90  # echo's price each time, whoever answered
    assert admin(gw, "PATCH", "/admin/canary", {"weight": 100}).status_code == 200
    control(canary, "fail")
    try:
        failed = [gw.call_tool("echo", {"text": "hi"}, key) for _ in range(2)]
        assert [f["error"]["message"] for f in failed] == ["canary fails on purpose"] * 2
        assert [echo(gw, key) for _ in range(2)] == ["hi"] * 2  # the breaker rolled it back
    finally:
        control(canary, "ok")
    state = admin(gw, "GET", "/admin/canary").json()
    assert state["breaker"]["state"] == "open" and state["rolledBack"] == 2
    assert state["variants"]["canary"] == {**state["variants"]["canary"], "calls": 5, "errors": 2}
    assert gw.balance(key) == 82  # failed calls charged (refundOnFailure is off), as any failed call
    assert admin(gw, "DELETE", "/admin/canary").status_code == 200


def test_mirror_copies_calls_without_charging_or_delaying_them(gw: Gateway, shadow: ServerProcess) -> None:
    resp = admin(gw, "POST", "/admin/mirror", {"url": shadow.url, "percentage": 100, "timeoutMs": 500})
    assert resp.status_code == 200, resp.text
    key = gw.create_key(20)
    assert [echo(gw, key, f"m{i}") for i in range(3)] == ["m0", "m1", "m2"]
    wait_until(lambda: [c["arguments"]["text"] for c in received(shadow)] == ["m0", "m1", "m2"], 10, "the copies")
    control(shadow, "hang")
    try:
        started = time.monotonic()
        assert echo(gw, key, "fast") == "fast"
        assert time.monotonic() - started < 0.5  # the hanging copy is not waited for
        wait_until(lambda: admin(gw, "GET", "/admin/mirror").json()["stats"]["errors"] == 1, 10, "the copy's timeout")
    finally:
        control(shadow, "ok")
    assert gw.balance(key) == 12  # four calls at 2 credits; the copies cost nothing
    assert admin(gw, "DELETE", "/admin/mirror").status_code == 200


def test_an_aliased_call_is_charged_at_the_real_tools_price_with_deprecation_headers(gw: Gateway) -> None:
    body = {"from": "plus", "to": "add", "sunset": "Wed, 30 Jun 2027 00:00:00 GMT", "link": "https://docs.example/add"}
    assert admin(gw, "POST", "/admin/tool-aliases", body).status_code == 200
    key = gw.create_key(10)
    reply = gw.rpc("tools/call", {"name": "plus", "arguments": {"a": 2, "b": 3}}, key=key)
    assert reply.json()["result"]["structuredContent"] == {"result": 5}
    assert gw.balance(key) == 5
    assert reply.headers["sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    assert reply.headers["deprecation"].startswith("@")
    assert reply.headers["link"] == '<https://docs.example/add>; rel="deprecation"'
    [alias] = admin(gw, "GET", "/admin/tool-aliases").json()["aliases"]
    assert alias["calls"] == 1
