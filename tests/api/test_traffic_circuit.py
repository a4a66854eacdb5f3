"""The circuit breaker through the real app (in-process; failures scripted on the echo double,
tests/api/breaker_faults.py): it opens after `circuitBreakerThreshold` consecutive failures, refuses
with -32003 before any charge, half-opens after the cooldown (one probe), closes on the probe's success;
per server prefix and per tool; what counts as a failure; GET/POST /admin/circuit; metrics, events,
persistence. tests/e2e/test_traffic_breaker.py runs it through the real CLI against a flaky server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from paygate.traffic.circuit import CircuitBreakers
from tests.api.breaker_faults import Faults
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_SERVER, PYTHON, wait_until, write_config

CIRCUIT_OPEN = -32003


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def gateway(tmp_path: Path, config: dict[str, Any], **kwargs: Any) -> Iterator[InProcessGateway]:
    server = {} if "servers" in config else {"serverCommand": PYTHON, "serverArgs": [ECHO_SERVER]}
    path = write_config(tmp_path, {**server, **config})
    with running_inprocess_gateway("--config", path, "--rate-limit", "0", **kwargs) as gw:
        yield gw


def circuits_of(gw: InProcessGateway) -> CircuitBreakers:
    assert gw.rt is not None
    stage = gw.rt.dispatcher.traffic.stage("circuit")
    return stage.circuits  # type: ignore[union-attr]


def faults_of(gw: InProcessGateway, prefix: str | None = None) -> Faults:
    assert gw.rt is not None
    backend = gw.rt.backend
    return Faults(backend.backends[prefix] if prefix else backend)  # type: ignore[attr-defined]


def with_clock(gw: InProcessGateway) -> Clock:
    clock = Clock()
    circuits_of(gw).clock = clock
    return clock


def view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/circuit", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def post(gw: InProcessGateway, body: Any = None) -> Any:
    return gw.client.post("/admin/circuit", json=body, headers=gw.admin())


def echo(gw: InProcessGateway, key: str) -> dict[str, Any]:
    return gw.call_tool("echo", {"text": "hi"}, key)


def test_off_by_default_and_nothing_is_on_the_call_path(tmp_path: Path) -> None:
    with gateway(tmp_path, {}) as gw:
        assert view(gw) == {
            "enabled": False,
            "threshold": 0,
            "cooldownSeconds": 30.0,
            "perTool": False,
            "scope": "backend",
            "state": "closed",
            "failures": 0,
            "rejections": 0,
            "breakers": {},
        }
        assert gw.rt is not None and not gw.rt.dispatcher.traffic.calls_on and not gw.rt.dispatcher.traffic.sends_on


def test_it_opens_refuses_before_any_charge_half_opens_and_closes(tmp_path: Path) -> None:
    with gateway(tmp_path, {"circuitBreakerThreshold": 2, "circuitBreakerCooldownSeconds": 30}) as gw:
        clock, faults = with_clock(gw), faults_of(gw)
        key = gw.create_key(10)
        faults.script["echo"] = ["error:-32000", "error:-32000"]
        for _ in range(2):
            assert echo(gw, key)["error"]["code"] == -32000
        assert gw.balance(key) == 8  # failures are charged (refundOnFailure is off)
        refused = echo(gw, key)
        assert refused["error"]["code"] == CIRCUIT_OPEN
        data = refused["error"]["data"]
        assert data == {"reason": "circuit_breaker_open", "breaker": "backend", "retryAfterSeconds": 30.0}
        assert gw.balance(key) == 8 and faults.sent_to("echo") == 2  # not charged, never sent
        shown = view(gw)
        assert (shown["enabled"], shown["state"], shown["failures"], shown["rejections"]) == (True, "open", 2, 1)
        assert shown["breakers"]["backend"]["timesOpened"] == 1
        metrics = gw.client.get("/metrics").text
        assert 'paygate_circuit_state{breaker="backend"} 1.0' in metrics
        assert 'paygate_circuit_rejections_total{breaker="backend"} 1.0' in metrics
        wait_until(lambda: gw.events("circuit.opened"), 5, "circuit.opened")
        assert gw.events("circuit.opened")[0]["data"]["breaker"] == "backend"

        clock.now += 30.0
        assert view(gw)["state"] == "half_open"
        assert 'paygate_circuit_state{breaker="backend"} 2.0' in gw.client.get("/metrics").text
        assert "result" in echo(gw, key)  # the probe
        assert view(gw)["state"] == "closed" and gw.balance(key) == 7
        wait_until(lambda: gw.events("circuit.closed"), 5, "circuit.closed")


def test_a_failed_probe_opens_it_again_for_a_whole_cooldown(tmp_path: Path) -> None:
    with gateway(tmp_path, {"circuitBreakerThreshold": 1, "circuitBreakerCooldownSeconds": 10}) as gw:
        clock, faults = with_clock(gw), faults_of(gw)
        key = gw.create_key(10)
        faults.script["echo"] = ["timeout", "lost"]
        assert echo(gw, key)["error"]["code"] == -32004  # a timeout counts
        clock.now += 10.0
        probe = echo(gw, key)
        assert probe["error"]["code"] == CIRCUIT_OPEN and "Backend unavailable" in probe["error"]["message"]
        assert view(gw)["breakers"]["backend"]["timesOpened"] == 2
        clock.now += 9.5
        refused = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}, key=key)
        assert refused.json()["error"]["data"]["retryAfterSeconds"] == 0.5
        assert refused.headers["retry-after"] == "1"  # whole seconds, rounded up


def test_tool_errors_and_the_callers_own_mistakes_are_not_failures(tmp_path: Path) -> None:
    """`isError: true` is the tool's answer; -32602 says the caller asked wrongly: neither trips it."""
    with gateway(tmp_path, {"circuitBreakerThreshold": 2}) as gw:
        faults = faults_of(gw)
        key = gw.create_key(50)
        faults.script["echo"] = ["isError", "isError", "error:-32602", "error:-32602", "isError"]
        for _ in range(5):
            echo(gw, key)
        assert view(gw)["state"] == "closed" and view(gw)["failures"] == 0
        faults.script["echo"] = ["error:-32603", "down"]
        echo(gw, key)
        assert echo(gw, key)["error"]["code"] == CIRCUIT_OPEN  # the unavailable backend: the second failure
        assert gw.balance(key) == 50 - 6  # the undelivered call was refunded, the refusal never charged


def test_a_probe_the_gate_refuses_does_not_hold_the_half_open_breaker(tmp_path: Path) -> None:
    with gateway(tmp_path, {"circuitBreakerThreshold": 1, "circuitBreakerCooldownSeconds": 5}) as gw:
        clock, faults = with_clock(gw), faults_of(gw)
        rich, broke = gw.create_key(10), gw.create_key(0)
        faults.script["echo"] = ["error:-32000"]
        echo(gw, rich)
        clock.now += 5.0
        assert echo(gw, broke)["error"]["code"] == -32402  # let through as the probe, refused by the gate
        assert "result" in echo(gw, rich)  # the next call is the probe now, and closes it
        assert view(gw)["state"] == "closed"


def test_one_breaker_per_server_prefix(tmp_path: Path) -> None:
    servers = [{"prefix": p, "serverCommand": PYTHON, "serverArgs": [ECHO_SERVER]} for p in ("a", "b")]
    with gateway(tmp_path, {"servers": servers, "circuitBreakerThreshold": 1}) as gw:
        faults = faults_of(gw, "a")
        key = gw.create_key(10)
        faults.script["echo"] = ["error:-32000"]
        gw.call_tool("a:echo", {"text": "x"}, key)
        assert gw.call_tool("a:add", {"a": 1, "b": 2}, key)["error"]["code"] == CIRCUIT_OPEN
        assert "result" in gw.call_tool("b:echo", {"text": "x"}, key)
        shown = view(gw)
        assert shown["scope"] == "server" and shown["state"] == "open"
        assert {k: v["state"] for k, v in shown["breakers"].items()} == {"a": "open", "b": "closed"}


def test_one_breaker_per_tool_when_configured(tmp_path: Path) -> None:
    with gateway(tmp_path, {"circuitBreakerThreshold": 1, "circuitBreakerPerTool": True}) as gw:
        faults = faults_of(gw)
        key = gw.create_key(10)
        faults.script["echo"] = ["error:-32000"]
        echo(gw, key)
        assert echo(gw, key)["error"]["code"] == CIRCUIT_OPEN
        assert "result" in gw.call_tool("add", {"a": 1, "b": 2}, key)
        assert gw.call_tool("no_such_tool", {}, key)["error"]["code"] == -32602  # no breaker for it
        shown = view(gw)
        assert shown["scope"] == "tool" and sorted(shown["breakers"]) == ["add", "echo"]


def test_a_batch_around_the_call_stages_is_refused_as_undelivered_and_refunded(tmp_path: Path) -> None:
    with gateway(tmp_path, {"circuitBreakerThreshold": 1}) as gw:
        faults = faults_of(gw)
        key = gw.create_key(10)
        faults.script["echo"] = ["error:-32000"]
        echo(gw, key)
        calls = [{"name": "echo", "arguments": {"text": "a"}}, {"name": "add", "arguments": {"a": 1, "b": 1}}]
        reply = gw.rpc("tools/call_batch", {"calls": calls}, key=key).json()
        results = reply["result"]["results"]
        assert [r["error"]["code"] for r in results] == [CIRCUIT_OPEN, CIRCUIT_OPEN]
        assert "circuit breaker open" in results[0]["error"]["message"]
        assert gw.balance(key) == 9 and faults.sent_to("echo") == 1


def test_post_resets_adjusts_at_runtime_and_keeps_the_settings(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with gateway(tmp_path, {}, state_file=state, admin_key="admin-key-0123456789") as gw:
        faults = faults_of(gw)
        key = gw.create_key(10)
        resp = post(gw, {"threshold": 1, "cooldownSeconds": 60})
        assert resp.status_code == 200 and resp.json()["enabled"] and resp.json()["cooldownSeconds"] == 60.0
        faults.script["echo"] = ["error:-32000"]
        echo(gw, key)
        assert echo(gw, key)["error"]["code"] == CIRCUIT_OPEN
        assert post(gw, {"breaker": "nope"}).status_code == 404
        assert view(gw)["state"] == "open"  # the 404 changed nothing
        after = post(gw)  # no body: reset all
        assert after.status_code == 200 and after.json()["state"] == "closed"
        assert "result" in echo(gw, key)
        wait_until(lambda: gw.events("circuit.reset") and gw.events("circuit.updated"), 5, "the audit events")
        assert gw.events("circuit.updated")[0]["data"]["threshold"] == 1
    with gateway(tmp_path, {}, state_file=state, admin_key="admin-key-0123456789") as gw:
        shown = view(gw)
        assert (shown["enabled"], shown["threshold"], shown["cooldownSeconds"]) == (True, 1, 60.0)
        assert post(gw, {"threshold": 0}).json()["enabled"] is False
        assert gw.rt is not None and not gw.rt.dispatcher.traffic.calls_on


BAD_BODIES: list[Any] = [
    {"threshold": -1},
    {"threshold": "3"},
    {"cooldownSeconds": 86_401},
    {"perTool": "yes"},
    {"breaker": ""},
    {"colour": "red"},
    [1, 2],
]


def test_bad_bodies_are_refused_and_change_nothing(tmp_path: Path) -> None:
    with gateway(tmp_path, {"circuitBreakerThreshold": 3}) as gw:
        before = view(gw)
        for body in BAD_BODIES:
            resp = post(gw, body)
            assert resp.status_code in (400, 422), (body, resp.text)
            assert view(gw) == before
        assert not gw.events("circuit.updated") and not gw.events("circuit.reset")


def test_a_viewer_may_look_but_not_reset(tmp_path: Path) -> None:
    with gateway(tmp_path, {"circuitBreakerThreshold": 3}) as gw:
        made = gw.client.post("/admin/keys", json={"name": "v", "role": "viewer"}, headers=gw.admin())
        assert made.status_code == 201, made.text
        viewer = {"X-Admin-Key": made.json()["key"]}
        assert gw.client.get("/admin/circuit", headers=viewer).status_code == 200
        assert gw.client.post("/admin/circuit", json={}, headers=viewer).status_code == 403


def test_the_config_is_checked(tmp_path: Path) -> None:
    bad = {"circuitBreakerThreshold": -2}
    with pytest.raises(RuntimeError, match="circuitBreakerThreshold"), gateway(tmp_path, bad):
        pass
