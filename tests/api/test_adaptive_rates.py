"""Adaptive rates (docs/money-rules.md#adaptive-rates): GET/POST /admin/adaptive-rates, a key's rate limit
tightened after errors and back after its cooldown (the service's clock is set, never slept on), boosted for
a clean record, validation, roles, audit, persistence."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paygate.rules.adaptive import AdaptiveRates
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, write_config

URL = "/admin/adaptive-rates"
ON = {"enabled": True, "minCalls": 4, "errorRateThreshold": 0.5, "tightenFactor": 0.5, "boostFactor": 1.5}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = write_config(tmp_path_factory.mktemp("adaptive"), {})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "10", "--config", config) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def _off(gw: InProcessGateway) -> Iterator[None]:
    yield
    assert gw.client.post(URL, json={"enabled": False}, headers=gw.admin()).status_code == 200
    assert gw.rt is not None and gw.rt.billing.facts.adaptive is None  # nothing on the hot path when off


def _set(gw: InProcessGateway, **fields: Any) -> dict[str, Any]:
    resp = gw.client.post(URL, json=fields, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _service(gw: InProcessGateway) -> AdaptiveRates:
    assert gw.rt is not None
    adaptive = gw.rt.billing.facts.adaptive
    assert isinstance(adaptive, AdaptiveRates)
    return adaptive


def _call(gw: InProcessGateway, key: str, tool: str = "echo") -> httpx.Response:
    args = {"text": "hi"} if tool == "echo" else {}
    return gw.rpc("tools/call", {"name": tool, "arguments": args}, key=key)


def test_off_by_default(gw: InProcessGateway) -> None:
    view = gw.client.get(URL, headers=gw.admin()).json()
    assert view["enabled"] is False and view["trackedKeys"] == 0 and view["adjusted"] == []
    assert gw.rt is not None and gw.rt.billing.facts.adaptive is None


def test_errors_tighten_the_limit_and_the_cooldown_restores_it(gw: InProcessGateway) -> None:
    _set(gw, **ON, cooldownSeconds=60)
    key = gw.create_key(100)
    for _ in range(4):
        assert _call(gw, key, "fail").json()["result"]["isError"] is True
    view = gw.client.get(URL, headers=gw.admin()).json()
    row = next(a for a in view["adjusted"] if a["key"] == masked(key))
    assert row["direction"] == "tighten" and row["factor"] == 0.5 and row["errorRate"] == 1.0
    assert 55 <= row["secondsLeft"] <= 60
    event = next(e for e in gw.events("adaptive_rates.adjusted") if e["data"]["keyMasked"] == masked(key))
    assert event["data"]["direction"] == "tighten"
    ok = _call(gw, key)
    assert "result" in ok.json() and ok.headers["x-ratelimit-limit"] == "5"  # 10 calls/min, halved
    refused = _call(gw, key)  # the window holds 5 calls: the tightened limit refuses the sixth
    assert refused.json()["error"]["data"]["reason"] == "rate_limited" and refused.headers["x-ratelimit-limit"] == "5"
    balance = gw.balance(key)
    adaptive = _service(gw)
    later = time.time() + 61
    adaptive.clock = lambda: later  # the cooldown is over
    try:
        again = _call(gw, key)
        assert "result" in again.json() and again.headers["x-ratelimit-limit"] == "10"
        assert gw.balance(key) == balance - 1
        assert not [a for a in gw.client.get(URL, headers=gw.admin()).json()["adjusted"] if a["key"] == masked(key)]
    finally:
        adaptive.clock = time.time


def test_a_clean_record_boosts_the_limit(gw: InProcessGateway) -> None:
    _set(gw, **ON, cooldownSeconds=600)
    key = gw.create_key(100)
    for _ in range(4):
        assert "result" in _call(gw, key).json()
    assert _call(gw, key).headers["x-ratelimit-limit"] == "15"
    row = next(a for a in gw.client.get(URL, headers=gw.admin()).json()["adjusted"] if a["key"] == masked(key))
    assert row["direction"] == "boost" and row["factor"] == 1.5
    text = gw.client.get("/metrics").text
    assert 'paygate_adaptive_rate_adjustments_total{direction="boost"}' in text


def test_the_least_recently_seen_key_is_evicted(gw: InProcessGateway) -> None:
    _set(gw, **ON, maxTrackedKeys=2)
    keys = [gw.create_key(10) for _ in range(3)]
    for key in keys:
        assert "result" in _call(gw, key).json()
    view = gw.client.get(URL, headers=gw.admin()).json()
    assert view["trackedKeys"] == 2 and view["evictions"] >= 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"enabled": "yes"},
        {"errorRateThreshold": 0},
        {"errorRateThreshold": 1.5},
        {"tightenFactor": 2},
        {"boostFactor": 0.5},
        {"minCalls": 0},
        {"cooldownSeconds": -1},
        {"maxTrackedKeys": "5"},
        {"madeUp": 1},
    ],
)
def test_invalid_changes_are_refused_and_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = _set(gw, enabled=True, minCalls=7)
    resp = gw.client.post(URL, json=body, headers=gw.admin())
    assert resp.status_code == 400, resp.text
    after = gw.client.get(URL, headers=gw.admin()).json()
    assert {k: after[k] for k in ON} == {k: before[k] for k in ON} and after["minCalls"] == 7


def test_roles_and_audit(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/keys", json={"name": "v", "role": "viewer"}, headers=gw.admin())
    viewer = {"X-Admin-Key": resp.json()["key"]}
    assert gw.client.get(URL, headers=viewer).status_code == 200
    assert gw.client.post(URL, json={"enabled": True}, headers=viewer).status_code == 403
    assert gw.client.get(URL).status_code == 401
    _set(gw, enabled=True, cooldownSeconds=42)
    event = gw.events("adaptive_rates.updated")[-1]
    assert event["data"]["changed"] == ["cooldownSeconds", "enabled"] and event["data"]["cooldownSeconds"] == 42


def test_settings_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "10", "--config", write_config(tmp_path, {}))
    admin = "admin-key-for-adaptive-tests"
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as first:
        _set(first, enabled=True, minCalls=3, tightenFactor=0.25)
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as second:
        view = second.client.get(URL, headers=second.admin()).json()
        assert view["enabled"] is True and view["minCalls"] == 3 and view["tightenFactor"] == 0.25
        key = second.create_key(10)
        for _ in range(3):
            _call(second, key, "fail")
        assert _call(second, key).headers["x-ratelimit-limit"] == "2"  # 10 calls/min at 0.25
