"""Traffic mirror (traffic/mirror.py): GET/POST/DELETE /admin/mirror, the `mirror` setting, and the copies.

The shadow is a real Streamable-HTTP server in a thread (tests/servers/routing_server.py) that records
the calls it receives and can hang on demand.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.inprocess import InProcessGateway, running_inprocess_gateway, start_inprocess_gateway
from tests.servers.routing_server import RoutingServer, routing_server
from tests.support import ECHO_COMMAND, text_of, wait_until, write_config


@pytest.fixture(scope="module")
def shadow() -> Iterator[RoutingServer]:
    with routing_server("shadow") as server:
        yield server


@pytest.fixture(scope="module")
def mgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = write_config(tmp_path_factory.mktemp("mirror"), {"trafficAllowPrivate": True})
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "echo:2", "--config", config)
    with running_inprocess_gateway(*args) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def fresh(mgw: InProcessGateway, shadow: RoutingServer) -> Iterator[None]:
    shadow.mode = "ok"
    shadow.calls.clear()
    yield
    mgw.client.delete("/admin/mirror", headers=mgw.admin())
    shadow.mode = "ok"


def set_mirror(gw: InProcessGateway, body: dict[str, Any]) -> httpx.Response:
    return gw.client.post("/admin/mirror", json=body, headers=gw.admin())


def view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/mirror", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_each_call_is_copied_to_the_shadow_and_charged_once(mgw: InProcessGateway, shadow: RoutingServer) -> None:
    resp = set_mirror(mgw, {"url": shadow.url, "percentage": 100, "timeoutMs": 2000})
    assert resp.status_code == 200, resp.text
    assert resp.json()["enabled"] and resp.json()["connected"]
    key = mgw.create_key(20)
    texts = [text_of(mgw.call_tool("echo", {"text": f"m{i}"}, key)) for i in range(3)]
    assert texts == ["m0", "m1", "m2"]  # the primary answers
    assert mgw.balance(key) == 14  # charged once per call, never for the copy
    wait_until(lambda: len(shadow.calls) == 3, 10, "the shadow to get the copies")
    assert [c["arguments"]["text"] for c in shadow.calls] == ["m0", "m1", "m2"]
    wait_until(lambda: view(mgw)["stats"]["completed"] == 3, 10, "the copies to be answered")
    stats = view(mgw)["stats"]
    assert stats["mirrored"] == 3 and stats["errors"] == 0 and stats["meanLatencyMs"] is not None
    assert 'paygate_mirror_requests_total{outcome="mirrored"} 3.0' in mgw.client.get("/metrics").text
    assert mgw.events("mirror.set")[-1]["data"]["percentage"] == 100


def test_a_hanging_shadow_delays_nothing_and_its_copies_time_out(mgw: InProcessGateway, shadow: RoutingServer) -> None:
    shadow.mode = "hang"
    assert set_mirror(mgw, {"url": shadow.url, "timeoutMs": 300}).status_code == 200
    key = mgw.create_key(10)
    started = time.monotonic()
    assert text_of(mgw.call_tool("echo", {"text": "fast"}, key)) == "fast"
    assert time.monotonic() - started < 0.3  # the copy would not answer at all
    wait_until(lambda: view(mgw)["stats"]["errors"] == 1, 10, "the copy to time out")
    assert "BackendTimeout" in view(mgw)["stats"]["lastError"]
    assert mgw.balance(key) == 8


def test_copies_beyond_the_in_flight_bound_are_dropped(mgw: InProcessGateway, shadow: RoutingServer) -> None:
    shadow.mode = "hang"
    assert set_mirror(mgw, {"url": shadow.url, "timeoutMs": 30_000}).status_code == 200
    key = mgw.create_key(200)
    for _ in range(40):
        assert "result" in mgw.call_tool("echo", {"text": "x"}, key)
    stats = view(mgw)["stats"]
    assert stats["mirrored"] == 32 and stats["dropped"] == 8 and stats["inFlight"] == 32
    assert mgw.balance(key) == 120


def test_percentage_zero_copies_nothing(mgw: InProcessGateway, shadow: RoutingServer) -> None:
    assert set_mirror(mgw, {"url": shadow.url, "percentage": 0}).status_code == 200
    key = mgw.create_key(10)
    mgw.call_tool("echo", {"text": "x"}, key)
    assert view(mgw)["stats"]["mirrored"] == 0 and shadow.calls == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": "http://127.0.0.1:1/mcp", "percentage": 101},
        {"url": "http://127.0.0.1:1/mcp", "timeoutMs": 0},
        {"url": "gopher://example.com/"},
        {"url": "http://127.0.0.1:1/mcp", "extra": True},
    ],
)
def test_bad_bodies_are_400_and_change_nothing(mgw: InProcessGateway, body: dict[str, Any]) -> None:
    assert set_mirror(mgw, body).status_code == 400
    assert view(mgw)["enabled"] is False


def test_private_shadows_are_refused_unless_allowed(gw: InProcessGateway, shadow: RoutingServer) -> None:
    for url in (shadow.url, "http://[::1]:9/", "http://metadata.google.internal/"):
        resp = gw.client.post("/admin/mirror", json={"url": url}, headers=gw.admin())
        assert resp.status_code == 400 and "trafficAllowPrivate" in resp.json()["error"], resp.text
    assert gw.client.get("/admin/mirror", headers=gw.admin()).json()["enabled"] is False
    assert gw.client.delete("/admin/mirror", headers=gw.admin()).status_code == 404


def test_the_mirror_setting_and_a_delete_that_outlives_a_restart(tmp_path: Path, shadow: RoutingServer) -> None:
    config = {"trafficAllowPrivate": True, "mirror": {"url": shadow.url, "percentage": 100, "timeoutMs": 1000}}
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", write_config(tmp_path, config))
    state, admin = str(tmp_path / "state.db"), "admin-key-for-mirror"
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as gw:
        wait_until(lambda: view(gw).get("connected") is True, 10, "the configured mirror to connect")
        gw.call_tool("echo", {"text": "from-config"}, gw.create_key(5))
        wait_until(lambda: [c["arguments"]["text"] for c in shadow.calls] == ["from-config"], 10, "the copy")
        assert gw.client.delete("/admin/mirror", headers=gw.admin()).status_code == 200
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as gw:
        assert view(gw)["enabled"] is False  # the operator's DELETE wins over the config file


def test_an_unsafe_configured_mirror_stops_start_up(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"mirror": {"url": "http://127.0.0.1:9/mcp"}})
    with pytest.raises(RuntimeError, match="trafficAllowPrivate"):
        start_inprocess_gateway("--server", ECHO_COMMAND, "--config", config).stop()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([0, 50, 100]), st.sampled_from(["ok", "fail", "hang"])), max_size=4))
def test_the_mirror_never_changes_what_a_call_costs(
    mgw: InProcessGateway, shadow: RoutingServer, rounds: list[tuple[int, str]]
) -> None:
    key = mgw.create_key(1000)
    calls = 0
    for percentage, mode in rounds:
        shadow.mode = mode
        assert set_mirror(mgw, {"url": shadow.url, "percentage": percentage, "timeoutMs": 200}).status_code == 200
        for _ in range(2):
            assert text_of(mgw.call_tool("echo", {"text": "x"}, key)) == "x"
            calls += 1
    assert mgw.balance(key) + 2 * calls == 1000
