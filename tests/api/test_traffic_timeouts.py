"""Timeouts through the real app (in-process, the echo double's `slow` tool): the global timeout and a
tool's own (`toolPricing[t].timeoutMs`), -32004, the request cancelled at the backend, the refund policy;
GET/POST /admin/timeouts changing them at runtime, kept across a restart. tests/e2e/test_traffic_breaker.py
runs a hanging tool through the real CLI and checks the server saw notifications/cancelled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.echo_backend import EchoBackend
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_SERVER, PYTHON, wait_until, write_config

TOOL_TIMEOUT = -32004


@contextmanager
def gateway(tmp_path: Path, config: dict[str, Any], **kwargs: Any) -> Iterator[InProcessGateway]:
    path = write_config(tmp_path, {"serverCommand": PYTHON, "serverArgs": [ECHO_SERVER], **config})
    with running_inprocess_gateway("--config", path, "--rate-limit", "0", **kwargs) as gw:
        yield gw


def slow(gw: InProcessGateway, key: str, seconds: float) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    reply = gw.call_tool("slow", {"seconds": seconds}, key)
    return reply, time.monotonic() - started


def echo_backend(gw: InProcessGateway) -> EchoBackend:
    assert gw.rt is not None and isinstance(gw.rt.backend, EchoBackend)
    return gw.rt.backend


def view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/timeouts", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def post(gw: InProcessGateway, body: Any) -> Any:
    return gw.client.post("/admin/timeouts", json=body, headers=gw.admin())


@pytest.mark.parametrize("refund", [True, False])
def test_a_tools_own_timeout_cancels_it_at_the_backend_and_the_refund_policy_settles_it(
    tmp_path: Path, refund: bool
) -> None:
    config = {"refundOnFailure": refund, "toolPricing": {"slow": {"timeoutMs": 200}}}
    with gateway(tmp_path, config) as gw:
        key = gw.create_key(10)
        reply, took = slow(gw, key, 31)
        assert reply["error"]["code"] == TOOL_TIMEOUT and "within 0.2s" in reply["error"]["message"]
        assert took < 5
        wait_until(lambda: 31 in echo_backend(gw).cancelled, 5, "the slow call to be cancelled at the backend")
        assert gw.balance(key) == (10 if refund else 9)
        assert "result" in gw.call_tool("echo", {"text": "x"}, key)  # other tools keep the global 300 s


def test_a_tool_may_have_longer_than_the_global_timeout(tmp_path: Path) -> None:
    config = {"toolTimeoutSeconds": 0.2, "toolPricing": {"slow": {"timeoutMs": 5000}}}
    with gateway(tmp_path, config) as gw:
        key = gw.create_key(10)
        assert slow(gw, key, 0.5)[0]["result"]["structuredContent"] == {"result": "slept 0.5"}
        assert view(gw) == {"toolTimeoutMs": 200, "tools": {"slow": 5000}, "source": "config"}


def test_post_changes_timeouts_at_runtime_and_they_are_kept(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with gateway(tmp_path, {}, state_file=state, admin_key="admin-key-0123456789") as gw:
        key = gw.create_key(10)
        assert view(gw) == {"toolTimeoutMs": 300_000, "tools": {}, "source": "config"}
        resp = post(gw, {"tools": {"slow": 200}})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"toolTimeoutMs": 300_000, "tools": {"slow": 200}, "source": "admin"}
        assert slow(gw, key, 32)[0]["error"]["code"] == TOOL_TIMEOUT
        post(gw, {"tools": {"slow": 0}, "toolTimeoutMs": 250})  # back to the global one, which is now 250 ms
        reply = slow(gw, key, 33)[0]
        assert reply["error"]["code"] == TOOL_TIMEOUT and "within 0.25s" in reply["error"]["message"]
        assert view(gw)["tools"] == {}
        wait_until(lambda: len(gw.events("timeouts.updated")) == 2, 5, "timeouts.updated")
        first = gw.events("timeouts.updated")[0]["data"]
        assert first == {"toolTimeoutMs": 300_000, "tools": ["slow"], "replace": False}
    with gateway(tmp_path, {}, state_file=state, admin_key="admin-key-0123456789") as gw:
        assert view(gw) == {"toolTimeoutMs": 250, "tools": {}, "source": "admin"}
        changed = post(gw, {"tools": {"echo": 1000, "add": 2000}})
        assert changed.json()["tools"] == {"add": 2000, "echo": 1000}
        replaced = post(gw, {"tools": {"slow": 900}, "replace": True})
        assert replaced.json()["tools"] == {"slow": 900}


BAD_BODIES: list[Any] = [
    {"toolTimeoutMs": 0},
    {"toolTimeoutMs": 86_400_001},
    {"toolTimeoutMs": "100"},
    {"tools": {"slow": -1}},
    {"tools": {"": 100}},
    {"tools": {"slow": 1.5}},
    {"tools": ["slow"]},
    {"replace": "yes"},
    {"other": 1},
    [],
]


def test_bad_bodies_are_refused_and_change_nothing(tmp_path: Path) -> None:
    with gateway(tmp_path, {"toolPricing": {"slow": {"timeoutMs": 700}}}) as gw:
        before = view(gw)
        for body in BAD_BODIES:
            resp = post(gw, body)
            assert resp.status_code in (400, 422), (body, resp.text)
            assert view(gw) == before
        assert gw.rt is not None and gw.rt.dispatcher.traffic.tool_timeouts == {"slow": 0.7}
        assert not gw.events("timeouts.updated")
