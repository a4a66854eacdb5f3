"""Canary routing (traffic/canary.py): GET/POST/PATCH/DELETE /admin/canary and where calls go.

The primary is the in-process echo double; the canary a real Streamable-HTTP server in a thread
(tests/servers/routing_server.py) that prefixes its answers with its name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.servers.routing_server import RoutingServer, routing_server
from tests.support import ECHO_COMMAND, text_of, wait_until, write_config


@pytest.fixture(scope="module")
def canary_server() -> Iterator[RoutingServer]:
    with routing_server("canary") as server:
        yield server


@pytest.fixture(scope="module")
def cgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = write_config(tmp_path_factory.mktemp("canary"), {"trafficAllowPrivate": True})
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "echo:2", "--config", config)
    with running_inprocess_gateway(*args) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def fresh(cgw: InProcessGateway, canary_server: RoutingServer) -> Iterator[None]:
    canary_server.mode = "ok"
    yield
    cgw.client.delete("/admin/canary", headers=cgw.admin())
    canary_server.mode = "ok"


def start(gw: InProcessGateway, body: dict[str, Any]) -> httpx.Response:
    return gw.client.post("/admin/canary", json=body, headers=gw.admin())


def view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/canary", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def answers(gw: InProcessGateway, key: str, n: int) -> list[str]:
    return [text_of(gw.call_tool("echo", {"text": "hi"}, key)) for _ in range(n)]


def test_weight_100_then_0_moves_every_call_and_the_charge_is_the_same(
    cgw: InProcessGateway, canary_server: RoutingServer
) -> None:
    resp = start(cgw, {"remoteUrl": canary_server.url, "weight": 100})
    assert resp.status_code == 200, resp.text
    assert resp.json()["enabled"] and resp.json()["connected"] and resp.json()["tools"] == ["add", "echo"]
    key = cgw.create_key(100)
    assert answers(cgw, key, 3) == ["canary:hi"] * 3
    assert cgw.balance(key) == 94  # echo's price, once per call
    # a tool the canary does not list stays on the primary whatever the weight
    assert "result" in cgw.call_tool("big_output", {"kilobytes": 1}, key)
    patched = cgw.client.patch("/admin/canary", json={"weight": 0}, headers=cgw.admin())
    assert patched.status_code == 200 and patched.json()["weight"] == 0
    assert answers(cgw, key, 3) == ["hi"] * 3
    assert cgw.balance(key) == 87
    variants = view(cgw)["variants"]
    assert variants["canary"]["calls"] == 3 and variants["canary"]["errors"] == 0
    assert variants["primary"]["calls"] == 4 and variants["canary"]["latencyMs"]["p95"] is not None
    metrics = cgw.client.get("/metrics").text
    assert 'paygate_canary_calls_total{variant="canary"} 3.0' in metrics
    assert [e["data"]["weight"] for e in cgw.events("canary.updated")][-1] == 0


def test_a_failing_canary_opens_its_breaker_and_calls_roll_back_to_the_primary(
    cgw: InProcessGateway, canary_server: RoutingServer
) -> None:
    canary_server.mode = "fail"
    body = {"remoteUrl": canary_server.url, "weight": 100, "breakerThreshold": 2, "breakerCooldownSeconds": 600}
    assert start(cgw, body).status_code == 200
    key = cgw.create_key(100)
    failures = [cgw.call_tool("echo", {"text": "hi"}, key) for _ in range(2)]
    assert [f["error"]["message"] for f in failures] == ["canary fails on purpose"] * 2
    assert cgw.balance(key) == 96  # failed calls are settled by the refund policy (off: charged)
    assert answers(cgw, key, 2) == ["hi", "hi"]  # rolled back
    state = view(cgw)
    assert state["breaker"]["state"] == "open" and state["effectiveWeight"] == 0 and state["rolledBack"] == 2
    assert state["variants"]["canary"]["errors"] == 2
    assert "paygate_canary_breaker_open 1.0" in cgw.client.get("/metrics").text


def test_failed_canary_calls_are_refunded_when_the_policy_says_so(tmp_path: Path, canary_server: RoutingServer) -> None:
    config = write_config(tmp_path, {"trafficAllowPrivate": True, "refundOnFailure": True})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gw:
        canary_server.mode = "fail"
        assert start(gw, {"remoteUrl": canary_server.url, "weight": 100}).status_code == 200
        key = gw.create_key(10)
        assert "error" in gw.call_tool("echo", {"text": "x"}, key)
        assert gw.balance(key) == 10


@pytest.mark.parametrize(
    "body",
    [
        {"weight": 50},
        {"remoteUrl": "http://127.0.0.1:1/mcp", "weight": 101},
        {"remoteUrl": "http://127.0.0.1:1/mcp", "weight": -1},
        {"remoteUrl": "ftp://example.com/mcp", "weight": 5},
        {"serverCommand": "/bin/sh", "serverArgs": ["-c", "id"], "weight": 5},
        {"remoteUrl": "http://127.0.0.1:1/mcp", "weight": 5, "breakerThreshold": 0},
        {"remoteUrl": "http://127.0.0.1:1/mcp", "weight": "5"},
    ],
)
def test_bad_bodies_are_400_and_change_nothing(cgw: InProcessGateway, body: dict[str, Any]) -> None:
    resp = start(cgw, body)
    assert resp.status_code == 400, resp.text
    assert view(cgw) == {"enabled": False}


def test_an_unreachable_canary_is_503_and_changes_nothing(cgw: InProcessGateway) -> None:
    from tests.support import free_port

    resp = start(cgw, {"remoteUrl": f"http://127.0.0.1:{free_port()}/mcp", "weight": 50})
    assert resp.status_code == 400 and "could not connect" in resp.json()["error"]
    assert view(cgw) == {"enabled": False}


def test_private_addresses_are_refused_unless_allowed(gw: InProcessGateway, canary_server: RoutingServer) -> None:
    for url in (canary_server.url, "http://169.254.169.254/latest", "http://localhost:9/mcp", "http://10.0.0.1/"):
        resp = gw.client.post("/admin/canary", json={"remoteUrl": url, "weight": 100}, headers=gw.admin())
        assert resp.status_code == 400 and "trafficAllowPrivate" in resp.json()["error"], resp.text
    assert gw.client.get("/admin/canary", headers=gw.admin()).json() == {"enabled": False}


def test_patch_and_delete_without_a_canary_are_404(cgw: InProcessGateway) -> None:
    assert cgw.client.patch("/admin/canary", json={"weight": 5}, headers=cgw.admin()).status_code == 404
    assert cgw.client.delete("/admin/canary", headers=cgw.admin()).status_code == 404
    assert cgw.client.patch("/admin/canary", json={}, headers=cgw.admin()).status_code == 400


def test_delete_sends_calls_back_to_the_primary(cgw: InProcessGateway, canary_server: RoutingServer) -> None:
    assert start(cgw, {"remoteUrl": canary_server.url, "weight": 100}).status_code == 200
    key = cgw.create_key(20)
    assert answers(cgw, key, 1) == ["canary:hi"]
    resp = cgw.client.delete("/admin/canary", headers=cgw.admin())
    assert resp.status_code == 200 and resp.json() == {"enabled": False}
    assert answers(cgw, key, 2) == ["hi", "hi"]
    assert cgw.events("canary.stopped") and cgw.events("canary.started")[-1]["data"]["weight"] == 100
    assert canary_server.url not in str(cgw.events("canary.started"))  # shown by scheme and host only


def test_the_canary_survives_a_restart(tmp_path: Path, canary_server: RoutingServer) -> None:
    config = write_config(tmp_path, {"trafficAllowPrivate": True})
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config)
    state, admin = str(tmp_path / "state.db"), "admin-key-for-canary"
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as gw:
        assert start(gw, {"remoteUrl": canary_server.url, "weight": 100}).status_code == 200
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as gw:
        wait_until(lambda: view(gw).get("connected") is True, 10, "the canary to reconnect")
        assert view(gw)["weight"] == 100
        assert answers(gw, gw.create_key(5), 1) == ["canary:hi"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([0, 50, 100]), st.sampled_from(["ok", "fail"])), min_size=1, max_size=4))
def test_the_canary_never_changes_what_a_call_costs(
    cgw: InProcessGateway, canary_server: RoutingServer, rounds: list[tuple[int, str]]
) -> None:
    """Whichever server answers, and whether it fails, each call costs echo's price once (refunds off):
    balance + spent == initial."""
    cgw.client.delete("/admin/canary", headers=cgw.admin())
    assert start(cgw, {"remoteUrl": canary_server.url, "weight": 0, "breakerThreshold": 1000}).status_code == 200
    key = cgw.create_key(1000)
    calls = 0
    for weight, mode in rounds:
        canary_server.mode = mode
        assert cgw.client.patch("/admin/canary", json={"weight": weight}, headers=cgw.admin()).status_code == 200
        for _ in range(2):
            cgw.call_tool("echo", {"text": "x"}, key)
            calls += 1
    assert cgw.balance(key) + 2 * calls == 1000
