"""Budget policies (docs/money-rules.md#budget-policies): GET/POST/DELETE /admin/budget-policies, refusal
before any charge (deny), throttling with Retry-After, alerts, targeting, persistence, concurrency, audit.

Each test creates the policies it needs (the module shares one gateway) and deletes every policy after."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.money_support import admitted_and_reasons, audited_gateway, racing_echo_calls
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, write_config

URL = "/admin/budget-policies"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    with audited_gateway(tmp_path_factory, "budgets") as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def _no_policies(gw: InProcessGateway) -> Iterator[None]:
    yield
    for p in _view(gw)["policies"]:
        assert gw.client.delete(URL, params={"id": p["id"]}, headers=gw.admin()).status_code == 200
    assert gw.rt is not None and gw.rt.billing.facts.budgets is None  # nothing on the hot path with none


def _view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get(URL, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _create(gw: InProcessGateway, **fields: Any) -> dict[str, Any]:
    resp = gw.client.post(URL, json={"name": "p", **fields}, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["policy"])


def _echo(gw: InProcessGateway, key: str) -> dict[str, Any]:
    return gw.call_tool("echo", {"text": "hi"}, key)


def _reason(reply: dict[str, Any]) -> str:
    return str(reply["error"]["data"]["reason"])


def test_a_daily_budget_on_a_key_denies_before_any_charge(gw: InProcessGateway) -> None:
    key, other = gw.create_key(10), gw.create_key(10)
    policy = _create(gw, target=f"key:{key}", dailyBudget=3, action="deny")
    assert policy["target"] == f"key:{masked(key)}" and key not in str(_view(gw))  # never the key itself
    for _ in range(3):
        assert "result" in _echo(gw, key)
    reply = _echo(gw, key)
    assert reply["error"]["code"] == -32402 and _reason(reply) == "budget_exceeded"
    assert policy["id"] in reply["error"]["message"] and "credits/day" in reply["error"]["message"]
    assert gw.balance(key) == 7  # the refusal cost nothing
    assert "result" in _echo(gw, other)  # another key is not this policy's target
    shown = _view(gw)["policies"][0]
    assert shown["spentToday"] == 3 and shown["remainingToday"] == 0 and shown["refused"] == 1
    assert shown["spentThisMonth"] >= 3 and shown["forecast"]["remaining"] == 0


def test_a_namespace_policy_counts_its_keys_together(gw: InProcessGateway) -> None:
    a, b = gw.create_key(10, namespace="team-a"), gw.create_key(10, namespace="team-a")
    c = gw.create_key(10, namespace="team-c")
    _create(gw, target="namespace:team-a", monthlyBudget=3)
    assert "result" in _echo(gw, a) and "result" in _echo(gw, b) and "result" in _echo(gw, a)
    assert _reason(_echo(gw, b)) == "budget_exceeded"
    assert "result" in _echo(gw, c)
    assert gw.balance(a) == 8 and gw.balance(b) == 9


def test_throttle_refuses_over_the_burn_rate_with_retry_after(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    _create(gw, target=f"key:{key}", burnRateLimit=2, windowMinutes=1, action="throttle")
    first = time.time()
    assert "result" in _echo(gw, key) and "result" in _echo(gw, key)
    resp = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}, key=key)
    elapsed = time.time() - first
    error = resp.json()["error"]
    assert error["data"]["reason"] == "budget_throttled"
    wait = error["data"]["retryAfterSeconds"]
    # the first call's second leaves the 60 s window that long after it: the wait is what remains of it
    assert 60 - elapsed - 1 <= wait <= 61 and resp.headers["retry-after"] == str(wait)
    assert gw.balance(key) == 8
    shown = _view(gw)["policies"][0]
    assert shown["windowSpent"] == 2 and shown["burnRate"] == 2.0 and shown["burnRateExceeded"] is False


def test_deny_applies_the_burn_rate_too_without_retry_after(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    _create(gw, target=f"key:{key}", burnRateLimit=1, windowMinutes=1, action="deny")
    assert "result" in _echo(gw, key)
    resp = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}, key=key)
    assert resp.json()["error"]["data"]["reason"] == "budget_exceeded" and "retry-after" not in resp.headers


def test_alert_lets_calls_through_and_announces_once(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    policy = _create(gw, target=f"key:{key}", dailyBudget=2, action="alert")
    for _ in range(4):
        assert "result" in _echo(gw, key)
    assert gw.balance(key) == 6
    alerts = [e for e in gw.events("budget.alert") if e["data"]["policyId"] == policy["id"]]
    assert len(alerts) == 1 and alerts[0]["data"]["kind"] == "daily" and alerts[0]["data"]["spent"] == 2
    shown = _view(gw)["policies"][0]
    assert shown["alerts"] == 1 and shown["spentToday"] == 4 and shown["remainingToday"] == 0


def test_a_batch_is_refused_whole_when_it_would_pass_a_budget(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    _create(gw, target=f"key:{key}", dailyBudget=2)
    calls = [{"name": "echo", "arguments": {"text": t}} for t in ("a", "b", "c")]
    error = gw.rpc("tools/call_batch", {"calls": calls}, key=key).json()["error"]
    assert error["data"]["reason"] == "budget_exceeded"
    assert gw.balance(key) == 10
    assert "result" in gw.rpc("tools/call_batch", {"calls": calls[:2]}, key=key).json()
    assert gw.balance(key) == 8


def test_a_policy_can_be_changed_and_the_forecast_follows_the_burn_rate(gw: InProcessGateway) -> None:
    key = gw.create_key(100)
    policy = _create(gw, target=f"key:{key}", dailyBudget=20)
    for _ in range(5):
        _echo(gw, key)
    shown = _view(gw)["policies"][0]
    assert shown["burnRate"] == 1.0  # 5 credits over a 5-minute window
    assert shown["forecast"]["remaining"] == 15 and shown["forecast"]["secondsUntilExhausted"] == 900
    resp = gw.client.post(URL, json={"id": policy["id"], "dailyBudget": 5}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    assert resp.json()["policy"]["dailyBudget"] == 5 and resp.json()["policy"]["target"] == f"key:{masked(key)}"
    assert _reason(_echo(gw, key)) == "budget_exceeded"
    events = [e for e in gw.events("budget_policies.updated") if e["data"]["id"] == policy["id"]]
    assert [e["data"]["op"] for e in events] == ["created", "updated"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "x", "target": "*"},  # limits nothing
        {"name": "x", "target": "*", "dailyBudget": -1},
        {"name": "x", "target": "*", "dailyBudget": "5"},
        {"name": "x", "target": "*", "dailyBudget": 1.5},
        {"name": "x", "target": "*", "dailyBudget": 5, "action": "explode"},
        {"name": "x", "target": "*", "burnRateLimit": 5, "windowMinutes": 0},
        {"name": "x", "target": "*", "burnRateLimit": 5, "windowMinutes": 61},
        {"name": "x", "target": "team:a", "dailyBudget": 5},
        {"name": "x", "target": "key:pg_no_such_key", "dailyBudget": 5},
        {"name": "x", "target": "*", "dailyBudget": 5, "madeUp": 1},
        {"target": "*", "dailyBudget": 5},
        {"id": "bp_missing", "dailyBudget": 5},
    ],
)
def test_invalid_policies_are_refused_and_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    _create(gw, target="*", dailyBudget=1_000_000)
    before = _view(gw)["policies"]
    resp = gw.client.post(URL, json=body, headers=gw.admin())
    assert resp.status_code in (400, 404), resp.text
    assert resp.json()["error"]
    assert [p["dailyBudget"] for p in _view(gw)["policies"]] == [p["dailyBudget"] for p in before]
    assert gw.client.delete(URL, params={"id": "bp_missing"}, headers=gw.admin()).status_code == 404


def test_roles_a_viewer_reads_only_admins_change(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/keys", json={"name": "v", "role": "viewer"}, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    viewer = {"X-Admin-Key": resp.json()["key"]}
    assert gw.client.get(URL, headers=viewer).status_code == 200
    body = {"name": "x", "target": "*", "dailyBudget": 5}
    assert gw.client.post(URL, json=body, headers=viewer).status_code == 403
    assert gw.client.get(URL).status_code == 401
    assert _view(gw)["count"] == 0


def test_metrics_are_exported(gw: InProcessGateway) -> None:
    policy = _create(gw, target="*", dailyBudget=1_000_000)
    text = gw.client.get("/metrics").text
    assert 'paygate_budget_policy_refusals_total{reason="budget_exceeded"}' in text
    assert f'paygate_budget_policy_spent{{period="day",policy="{policy["id"]}"}}' in text


def test_concurrent_calls_against_a_budget_of_n_exactly_n_succeed(gw: InProcessGateway) -> None:
    """Forty calls by one key at once over separate connections, against a daily budget of 7 credits:
    exactly 7 run and are charged, every other is refused before any charge."""
    key = gw.create_key(100)
    _create(gw, target=f"key:{key}", dailyBudget=7)
    assert admitted_and_reasons(racing_echo_calls(gw, key)) == (7, {"budget_exceeded"})
    assert gw.balance(key) == 93


def test_a_rotated_key_keeps_its_policy(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    _create(gw, target=f"key:{key}", dailyBudget=1)
    assert "result" in _echo(gw, key)
    resp = gw.client.post("/keys/rotate", json={"key": key}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    new = resp.json()["newKey"]
    assert _reason(_echo(gw, new)) == "budget_exceeded"
    assert _view(gw)["policies"][0]["target"] == f"key:{masked(new)}"


def test_policies_and_spend_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    config = write_config(tmp_path, {})
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config)
    admin = "admin-key-for-budget-tests"
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as first:
        key = first.create_key(10)
        policy = _create(first, target=f"key:{key}", dailyBudget=3, burnRateLimit=100)
        assert "result" in _echo(first, key) and "result" in _echo(first, key)
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as second:
        shown = _view(second)["policies"]
        assert [p["id"] for p in shown] == [policy["id"]]
        assert shown[0]["spentToday"] == 2 and shown[0]["windowSpent"] == 2  # recounted from the usage log
        assert "result" in _echo(second, key)
        assert _reason(_echo(second, key)) == "budget_exceeded"
        assert second.balance(key) == 7


def test_a_throttled_batch_says_when_to_come_back(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    _create(gw, target=f"key:{key}", burnRateLimit=2, windowMinutes=1, action="throttle")
    assert "result" in _echo(gw, key)
    calls = [{"name": "echo", "arguments": {"text": t}} for t in ("a", "b")]
    resp = gw.rpc("tools/call_batch", {"calls": calls}, key=key)
    error = resp.json()["error"]
    assert error["data"]["reason"] == "budget_throttled" and error["data"]["failedIndex"] == 1
    assert resp.headers["retry-after"] == str(error["data"]["retryAfterSeconds"])
    assert gw.balance(key) == 9
