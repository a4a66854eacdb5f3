"""Maintenance mode (GET/POST /maintenance): /mcp refuses clients, admin keeps working, /ready reflects it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, text_of, wait_until


@pytest.fixture(autouse=True)
def maintenance_off(gw: InProcessGateway) -> Iterator[None]:
    yield
    gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": False})


def state(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/maintenance", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_maintenance_is_off_by_default(gw: InProcessGateway) -> None:
    assert state(gw) == {"enabled": False, "message": None, "since": None}


def test_maintenance_refuses_mcp_clients_while_admin_endpoints_keep_working(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    resp = gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": True, "message": "Upgrading, back soon"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["enabled"] is True and resp.json()["message"] == "Upgrading, back soon"
    assert resp.json()["since"].endswith("Z")
    assert state(gw) == resp.json()

    refused = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, key=key, msg_id=7)
    assert refused.status_code == 503
    body = refused.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["message"] == "Upgrading, back soon"
    assert body["error"]["code"] == -32402 and body["error"]["data"]["reason"] == "maintenance_mode"
    assert gw.balance(key) == 10  # nothing charged
    stream = gw.client.get("/mcp", headers={"Accept": "text/event-stream", "Mcp-Session-Id": "any"})
    assert stream.status_code == 503 and stream.json()["error"]["data"]["reason"] == "maintenance_mode"

    assert gw.client.get("/ready").status_code == 503
    assert gw.client.get("/health").json()["status"] == "maintenance"
    topped = gw.client.post("/topup", headers=gw.admin(), json={"key": key, "credits": 5})
    assert topped.status_code == 200 and gw.balance(key) == 15

    off = gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": False})
    assert off.status_code == 200 and off.json() == {"enabled": False, "message": None, "since": None}
    assert text_of(gw.call_tool("echo", {"text": "back"}, key)) == "back"
    assert gw.balance(key) == 14
    assert gw.client.get("/ready").status_code == 200
    assert gw.client.get("/health").json()["status"] == "healthy"


def test_enabling_without_a_message_uses_the_default_message(gw: InProcessGateway) -> None:
    resp = gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": True})
    assert resp.status_code == 200 and "maintenance" in resp.json()["message"].lower()
    assert gw.rpc("tools/list").status_code == 503


def test_changing_the_message_of_an_open_window_keeps_its_start(gw: InProcessGateway) -> None:
    first = gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": True, "message": "A"}).json()
    start = first["since"]
    wait_until(lambda: iso_now() != start, what="a later millisecond")
    second = gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": True, "message": "B"}).json()
    assert second == {"enabled": True, "message": "B", "since": start}


def iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def test_each_change_publishes_an_event(gw: InProcessGateway) -> None:
    before_on, before_off = len(gw.events("maintenance.enabled")), len(gw.events("maintenance.disabled"))
    gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": True, "message": "event check"})
    gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": False})
    on = gw.events("maintenance.enabled")
    assert len(on) == before_on + 1 and on[-1]["data"]["message"] == "event check" and on[-1]["actor"] == "admin"
    assert len(gw.events("maintenance.disabled")) == before_off + 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"enabled": "yes"},
        {"enabled": 1},
        {"enabled": True, "message": ""},
        {"enabled": True, "message": "x" * 501},
        {"enabled": True, "message": 5},
        {"enabled": True, "why": "x"},
    ],
)
def test_bad_maintenance_requests_are_400_and_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    resp = gw.client.post("/maintenance", headers=gw.admin(), json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert state(gw)["enabled"] is False
    assert gw.client.get("/ready").status_code == 200


def test_a_viewer_may_read_but_not_switch_maintenance(gw: InProcessGateway) -> None:
    viewer = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "v", "role": "viewer"}).json()["key"]
    assert gw.client.get("/maintenance", headers={"X-Admin-Key": viewer}).status_code == 200
    resp = gw.client.post("/maintenance", headers={"X-Admin-Key": viewer}, json={"enabled": True})
    assert resp.status_code == 403
    assert state(gw)["enabled"] is False


def test_maintenance_survives_a_restart(tmp_path: Path) -> None:
    state_file = str(tmp_path / "s.db")
    admin = "admin_maintenance_restart_0123456789"
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state_file, admin_key=admin) as gw:
        gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": True, "message": "still down"})
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state_file, admin_key=admin) as gw:
        assert state(gw)["enabled"] is True and state(gw)["message"] == "still down"
        assert gw.rpc("ping").status_code == 503
        assert gw.client.get("/ready").status_code == 503
        gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": False})
        assert gw.rpc("ping").status_code == 200
