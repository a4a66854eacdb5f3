"""Quota rules (docs/money-rules.md#quota-rules): GET/POST/DELETE /admin/quota-rules, deny before any charge,
burst, warn and throttle, persistence and recount across a restart, metrics, audit, roles.

Each test creates the rules it needs (the module shares one gateway) and deletes every rule after it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.money_support import admitted_and_reasons, audited_gateway, racing_echo_calls
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    with audited_gateway(tmp_path_factory, "quota-rules") as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def _no_rules(gw: InProcessGateway) -> Iterator[None]:
    yield
    for rule in _view(gw)["rules"]:
        resp = gw.client.delete("/admin/quota-rules", params={"id": rule["id"]}, headers=gw.admin())
        assert resp.status_code == 200, resp.text


def _create(gw: InProcessGateway, **fields: Any) -> dict[str, Any]:
    resp = gw.client.post("/admin/quota-rules", json=fields, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["rule"])


def _view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/quota-rules", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _echo(gw: InProcessGateway, key: str, tool: str = "echo") -> httpx.Response:
    return gw.rpc("tools/call", {"name": tool, "arguments": {"text": "hi"}}, key=key)


def test_no_rule_means_nothing_on_the_hot_path(gw: InProcessGateway) -> None:
    assert _view(gw)["rules"] == []
    assert gw.rt is not None and gw.rt.billing.facts.quota_rules is None
    assert not any(s.name == "quota_rules" for s in gw.rt.dispatcher.traffic.calls_on)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"key": "*"},
        {"key": "*", "limit": 0},
        {"key": "*", "limit": "5"},
        {"key": "*", "limit": 5, "period": "hourly"},
        {"key": "*", "limit": 5, "metric": "bytes"},
        {"key": "*", "limit": 5, "action": "explode"},
        {"key": "*", "limit": 5, "burstPercent": 101},
        {"key": "*", "limit": 5, "tool": "has space"},
        {"key": "*", "limit": 5, "madeUp": 1},
    ],
)
def test_invalid_rules_are_refused_with_400_and_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    resp = gw.client.post("/admin/quota-rules", json=body, headers=gw.admin())
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]
    assert _view(gw)["rules"] == []


def test_an_unknown_key_is_404_and_an_unknown_rule_id_too(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/quota-rules", json={"key": "pg_nope", "limit": 1}, headers=gw.admin())
    assert resp.status_code == 404 and _view(gw)["rules"] == []
    assert gw.client.delete("/admin/quota-rules", params={"id": "qr_nope"}, headers=gw.admin()).status_code == 404


def test_roles_a_viewer_reads_only_admins_change(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/keys", json={"name": "v", "role": "viewer"}, headers=gw.admin())
    viewer = {"X-Admin-Key": resp.json()["key"]}
    assert gw.client.get("/admin/quota-rules", headers=viewer).status_code == 200
    body = {"key": "*", "limit": 1}
    assert gw.client.post("/admin/quota-rules", json=body, headers=viewer).status_code == 403
    assert gw.client.get("/admin/quota-rules").status_code == 401
    assert _view(gw)["rules"] == []


def test_a_deny_rule_refuses_before_any_charge_and_only_its_key_and_tool(gw: InProcessGateway) -> None:
    a, b = gw.create_key(10), gw.create_key(10)
    rule = _create(gw, key=a, tool="echo", limit=2)
    assert rule["hardCap"] == 2 and rule["action"] == "deny" and rule["period"] == "daily"
    assert rule["metric"] == "calls" and rule["key"] != a and "keyHash" not in rule
    assert "result" in _echo(gw, a).json() and "result" in _echo(gw, a).json()
    resp = _echo(gw, a)
    error = resp.json()["error"]
    assert error["code"] == -32402 and error["data"]["reason"] == "quota_rule_exceeded"
    assert error["data"]["httpStatus"] == 429 and rule["id"] in error["message"]
    assert "retryAfterSeconds" not in error["data"] and "retry-after" not in resp.headers
    assert gw.balance(a) == 8  # the refused call cost nothing
    assert "result" in _echo(gw, b).json()  # another key is not bound by it
    other = gw.rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}, key=a).json()
    assert "result" in other  # another tool is not bound by it
    assert gw.balance(a) == 7
    view = _view(gw)
    assert view["denied"]["deny"] >= 1
    assert view["rules"][0]["usage"][0]["calls"] == 2


def test_burst_lets_calls_through_past_the_limit_with_a_warning(gw: InProcessGateway) -> None:
    key = gw.create_key(20)
    rule = _create(gw, key=key, limit=2, burstPercent=50)  # hard cap 3
    assert rule["hardCap"] == 3
    first = _echo(gw, key)
    assert "result" in first.json() and "x-quota-warning" not in first.headers
    _echo(gw, key)
    third = _echo(gw, key)
    assert "result" in third.json()
    assert third.headers["x-quota-warning"].startswith(rule["id"]) and "hardCap=3" in third.headers["x-quota-warning"]
    assert _echo(gw, key).json()["error"]["data"]["reason"] == "quota_rule_exceeded"
    assert gw.balance(key) == 17
    exceeded = [e for e in gw.events("quota_rule.exceeded") if e["data"]["id"] == rule["id"]]
    assert len(exceeded) == 1  # once per rule, key and period


def test_a_warn_rule_never_refuses(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    _create(gw, key=key, limit=1, action="warn")
    assert "x-quota-warning" not in _echo(gw, key).headers
    for _ in range(3):
        resp = _echo(gw, key)
        assert "result" in resp.json() and "x-quota-warning" in resp.headers
    assert gw.balance(key) == 6


def test_a_throttle_rule_says_when_to_come_back(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    _create(gw, key=key, limit=1, action="throttle", period="weekly")
    _echo(gw, key)
    before = time.time()
    resp = _echo(gw, key)
    after = time.time()
    data = resp.json()["error"]["data"]
    assert data["reason"] == "quota_rule_exceeded"
    # until the week rolls over: next Monday 00:00 UTC (the epoch began on a Thursday, 3 days after a Monday)
    week = 7 * 86_400
    monday = ((after + 3 * 86_400) // week + 1) * week - 3 * 86_400
    assert monday - after - 1 <= data["retryAfterSeconds"] <= monday - before + 1
    assert resp.headers["retry-after"] == str(data["retryAfterSeconds"])
    assert gw.balance(key) == 9


def test_a_credits_rule_for_every_key(gw: InProcessGateway) -> None:
    a, b = gw.create_key(10), gw.create_key(10)
    _create(gw, key="*", metric="credits", limit=2, period="monthly")
    for key in (a, b):  # each key counted on its own
        assert "result" in _echo(gw, key).json() and "result" in _echo(gw, key).json()
        assert _echo(gw, key).json()["error"]["data"]["reason"] == "quota_rule_exceeded"
        assert gw.balance(key) == 8


def test_a_batch_is_refused_whole_when_it_would_pass_a_rule(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    _create(gw, key=key, tool="echo", limit=2)
    calls = [{"name": "echo", "arguments": {"text": t}} for t in ("a", "b", "c")]
    error = gw.rpc("tools/call_batch", {"calls": calls}, key=key).json()["error"]
    assert error["data"]["reason"] == "quota_rule_exceeded"
    assert gw.balance(key) == 10
    assert "result" in gw.rpc("tools/call_batch", {"calls": calls[:2]}, key=key).json()
    assert _echo(gw, key).json()["error"]["data"]["reason"] == "quota_rule_exceeded"


def test_created_and_deleted_are_audited_and_metrics_exported(gw: InProcessGateway) -> None:
    rule = _create(gw, key="*", limit=999)
    created = gw.events("quota_rule.created")[-1]
    assert created["data"]["id"] == rule["id"] and created["data"]["limit"] == 999
    assert gw.client.delete("/admin/quota-rules", params={"id": rule["id"]}, headers=gw.admin()).status_code == 200
    assert gw.events("quota_rule.deleted")[-1]["data"]["id"] == rule["id"]
    assert gw.rt is not None and gw.rt.billing.facts.quota_rules is None  # off again
    text = gw.client.get("/metrics").text
    assert "paygate_quota_rule_warnings_total" in text and "paygate_quota_rules " in text


def test_a_rotated_key_keeps_its_rule_and_counts(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    _create(gw, key=key, limit=1)
    assert "result" in _echo(gw, key).json()
    resp = gw.client.post("/keys/rotate", json={"key": key}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    assert _echo(gw, resp.json()["newKey"]).json()["error"]["data"]["reason"] == "quota_rule_exceeded"


def test_concurrent_http_calls_against_a_limit_of_k_exactly_k_succeed(gw: InProcessGateway) -> None:
    key = gw.create_key(100)
    _create(gw, key=key, limit=7)
    assert admitted_and_reasons(racing_echo_calls(gw, key)) == (7, {"quota_rule_exceeded"})
    assert gw.balance(key) == 93


def test_rules_survive_a_restart_and_counts_are_recounted(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    config = write_config(tmp_path, {})
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config)
    admin = "admin-key-for-quota-rule-tests"
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as first:
        key = first.create_key(10)
        rule = _create(first, key=key, tool="echo", limit=3)
        for _ in range(3):
            assert "result" in _echo(first, key).json()
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as second:
        view = _view(second)
        assert [r["id"] for r in view["rules"]] == [rule["id"]]
        assert view["rules"][0]["usage"][0]["calls"] == 3  # recounted from the usage log
        assert _echo(second, key).json()["error"]["data"]["reason"] == "quota_rule_exceeded"
        assert second.balance(key) == 7
