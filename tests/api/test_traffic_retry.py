"""The retry policy through the real app (in-process; failures scripted on the echo double,
tests/api/breaker_faults.py): what is retried and what never is, the backoff inside the call's time,
the budget, one charge per logical call whatever the attempts (a hypothesis test over failure
sequences), the breaker counting only the final outcome, GET/POST /admin/retry-policy.
tests/e2e/test_traffic_breaker.py retries a call through the real CLI against a flaky server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paygate.traffic.retry import Retries
from tests.api.breaker_faults import Faults
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_SERVER, PYTHON, wait_until, write_config

POLICY = {
    "enabled": True,
    "maxRetries": 2,
    "baseBackoffMs": 0,
    "maxBackoffMs": 0,
    "retryOn": {"transport": True, "errorCodes": [-32000]},
    "idempotentTools": ["echo"],
}


@contextmanager
def gateway(tmp_path: Path, config: dict[str, Any], **kwargs: Any) -> Iterator[InProcessGateway]:
    path = write_config(tmp_path, {"serverCommand": PYTHON, "serverArgs": [ECHO_SERVER], **config})
    with running_inprocess_gateway("--config", path, "--rate-limit", "0", **kwargs) as gw:
        yield gw


def retries_of(gw: InProcessGateway) -> Retries:
    assert gw.rt is not None
    stage = gw.rt.dispatcher.traffic.stage("retry")
    assert isinstance(stage, Retries)
    return stage


def faults_of(gw: InProcessGateway) -> Faults:
    assert gw.rt is not None
    return Faults(gw.rt.backend)


def view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/retry-policy", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def post(gw: InProcessGateway, body: Any) -> Any:
    return gw.client.post("/admin/retry-policy", json=body, headers=gw.admin())


def echo(gw: InProcessGateway, key: str) -> dict[str, Any]:
    return gw.call_tool("echo", {"text": "hi"}, key)


def add(gw: InProcessGateway, key: str) -> dict[str, Any]:
    return gw.call_tool("add", {"a": 1, "b": 2}, key)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    """Retries on (POLICY), refundOnFailure off: a failure that reached the server is charged."""
    with gateway(tmp_path_factory.mktemp("retry"), {"retryPolicy": POLICY}) as gateway_:
        retries_of(gateway_).budget.percent = 10_000  # the budget has its own test
        yield gateway_


@pytest.fixture(scope="module")
def faults(gw: InProcessGateway) -> Faults:
    return faults_of(gw)


def test_off_by_default(tmp_path: Path) -> None:
    with gateway(tmp_path, {}) as plain:
        shown = view(plain)
        assert (shown["enabled"], shown["active"], shown["maxRetries"], shown["tools"]) == (False, False, 2, {})
        assert shown["retryOn"] == {"transport": True, "errorCodes": []} and shown["retryBudgetPercent"] == 20.0
        assert plain.rt is not None and not plain.rt.dispatcher.traffic.sends_on


def test_an_idempotent_tool_is_retried_on_listed_codes_and_charged_once(gw: InProcessGateway, faults: Faults) -> None:
    key = gw.create_key(10)
    before = faults.sent_to("echo")
    faults.script["echo"] = ["error:-32000", "lost"]
    assert "result" in echo(gw, key)
    assert faults.sent_to("echo") == before + 3 and gw.balance(key) == 9
    stats = view(gw)["tools"]["echo"]
    assert stats["retries"] >= 2 and stats["succeededAfterRetry"] >= 1
    assert 'paygate_retries_total{tool="echo"}' in gw.client.get("/metrics").text


def test_other_codes_timeouts_and_tool_errors_are_never_retried(gw: InProcessGateway, faults: Faults) -> None:
    key = gw.create_key(10)
    for step, code in (("error:-32603", -32603), ("timeout", -32004)):
        before = faults.sent_to("echo")
        faults.script["echo"] = [step]
        assert echo(gw, key)["error"]["code"] == code
        assert faults.sent_to("echo") == before + 1
    before = faults.sent_to("echo")
    faults.script["echo"] = ["isError"]
    assert echo(gw, key)["result"]["isError"] is True and faults.sent_to("echo") == before + 1
    assert gw.balance(key) == 7  # each charged once (refundOnFailure off)


def test_a_tool_not_declared_idempotent_is_retried_only_when_nothing_was_delivered(
    gw: InProcessGateway, faults: Faults
) -> None:
    key = gw.create_key(10)
    before = faults.sent_to("add")
    faults.script["add"] = ["error:-32000"]
    assert add(gw, key)["error"]["code"] == -32000
    faults.script["add"] = ["lost"]
    assert add(gw, key)["error"]["code"] == -32003
    assert faults.sent_to("add") == before + 2 and gw.balance(key) == 8
    faults.script["add"] = ["down", "down"]  # never reached the server: safe to send again
    assert add(gw, key)["result"]["structuredContent"] == {"result": 3}
    assert faults.sent_to("add") == before + 5 and gw.balance(key) == 7


def test_when_the_retries_run_out_the_last_failure_is_the_answer(gw: InProcessGateway, faults: Faults) -> None:
    key = gw.create_key(10)
    gave_up = view(gw)["tools"]["echo"]["gaveUp"]
    faults.script["echo"] = ["error:-32000"] * 3
    assert echo(gw, key)["error"]["code"] == -32000
    assert gw.balance(key) == 9 and view(gw)["tools"]["echo"]["gaveUp"] == gave_up + 1
    faults.script["echo"] = ["down"] * 3  # nothing ever arrived: refunded whatever the refund policy
    assert echo(gw, key)["error"]["code"] == -32003 and gw.balance(key) == 9
    faults.script["echo"] = ["lost", "down", "down"]  # the first may have run: the refund policy decides
    assert echo(gw, key)["error"]["code"] == -32003 and gw.balance(key) == 8


def test_the_backoff_stays_inside_the_calls_own_timeout(tmp_path: Path) -> None:
    config = {
        "retryPolicy": {**POLICY, "baseBackoffMs": 5000, "maxBackoffMs": 5000},
        "toolPricing": {"echo": {"timeoutMs": 200}},
    }
    with gateway(tmp_path, config) as gw:
        faults = faults_of(gw)
        retries_of(gw).jitter = lambda low, high: high  # the longest pause full jitter could pick
        key = gw.create_key(10)
        faults.script["echo"] = ["error:-32000"]
        assert echo(gw, key)["error"]["code"] == -32000  # a 5 s pause does not fit in 200 ms: no retry
        assert faults.sent_to("echo") == 1 and view(gw)["tools"]["echo"]["gaveUp"] == 1


def test_the_budget_caps_retries(tmp_path: Path) -> None:
    with gateway(tmp_path, {"retryPolicy": {**POLICY, "retryBudgetPercent": 0}}) as gw:
        faults = faults_of(gw)
        key = gw.create_key(100)
        faults.script["echo"] = ["down", "down"] * 10  # each call wants two retries
        for _ in range(4):
            echo(gw, key)
        shown = view(gw)
        assert shown["tools"]["echo"]["retries"] == 3  # the grace, then none (0 %)
        assert shown["budgetRefused"] >= 1
        assert "paygate_retries_budget_refused_total" in gw.client.get("/metrics").text


def test_the_breaker_counts_only_the_final_outcome(tmp_path: Path) -> None:
    with gateway(tmp_path, {"retryPolicy": POLICY, "circuitBreakerThreshold": 2}) as gw:
        faults = faults_of(gw)
        key = gw.create_key(10)
        faults.script["echo"] = ["error:-32000", "error:-32000"]
        assert "result" in echo(gw, key)  # two failed attempts, then a success: one good call
        circuit = gw.client.get("/admin/circuit", headers=gw.admin()).json()
        assert (circuit["state"], circuit["failures"]) == ("closed", 0)


def test_post_changes_it_at_runtime_keeps_it_and_audits_it(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with gateway(tmp_path, {}, state_file=state, admin_key="admin-key-0123456789") as gw:
        faults = faults_of(gw)
        key = gw.create_key(10)
        resp = post(gw, {**POLICY, "retryOn": {"errorCodes": [-32000]}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["active"] is True and resp.json()["retryOn"] == {"transport": True, "errorCodes": [-32000]}
        faults.script["echo"] = ["error:-32000"]
        assert "result" in echo(gw, key) and faults.sent_to("echo") == 2
        wait_until(lambda: gw.events("retry_policy.updated"), 5, "retry_policy.updated")
        assert gw.events("retry_policy.updated")[0]["data"]["enabled"] is True
    with gateway(tmp_path, {}, state_file=state, admin_key="admin-key-0123456789") as gw:
        assert view(gw)["active"] is True and view(gw)["idempotentTools"] == ["echo"]
        assert post(gw, {"enabled": False}).json()["active"] is False
        assert gw.rt is not None and not gw.rt.dispatcher.traffic.sends_on


BAD_BODIES: list[Any] = [
    {"maxRetries": 11},
    {"maxRetries": -1},
    {"baseBackoffMs": 5000, "maxBackoffMs": 100},  # max below base: 400
    {"retryOn": {"errorCodes": ["x"]}},
    {"retryOn": {"codes": [1]}},
    {"idempotentTools": [""]},
    {"idempotentTools": ["t"] * 1001},
    {"retryBudgetPercent": 101},
    {"enabled": "true"},
    {"bogus": 1},
    [],
]


def test_bad_bodies_are_refused_and_change_nothing(tmp_path: Path) -> None:
    with gateway(tmp_path, {}) as gw:
        before = view(gw)
        for body in BAD_BODIES:
            resp = post(gw, body)
            assert resp.status_code in (400, 422), (body, resp.text)
            assert view(gw) == before
        assert not gw.events("retry_policy.updated")


STEP = st.sampled_from(["ok", "down", "lost", "timeout", "error:-32000", "error:-32603", "isError"])


def expected(tool: str, steps: list[str]) -> tuple[int, int]:
    """(requests sent, credits charged) for one call as the policy (POLICY, refundOnFailure off) says."""
    idempotent, reached, sent = tool == "echo", False, 0
    for attempt in range(POLICY["maxRetries"] + 1):  # type: ignore[operator]
        step = steps[attempt] if attempt < len(steps) else "ok"
        sent += 1
        if step in ("ok", "isError"):
            return sent, 1
        reached = reached or step != "down"
        retryable = step == "down" or (idempotent and step in ("lost", "error:-32000"))
        if not retryable:
            break
    return sent, 1 if reached else 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.tuples(st.sampled_from(["echo", "add"]), st.lists(STEP, max_size=4)), min_size=1, max_size=5))
def test_credits_are_conserved_and_each_call_is_charged_once(
    gw: InProcessGateway, faults: Faults, calls: list[tuple[str, list[str]]]
) -> None:
    """Whatever the failures, a call costs its price once or nothing: never once per attempt; the
    attempts are what the policy allows; balance + spent is the key's initial credits."""
    initial = 20
    key = gw.create_key(initial)
    left = initial
    for tool, steps in calls:
        sent_before = faults.sent_to(tool)
        faults.script[tool] = list(steps)
        reply = gw.call_tool(tool, {"text": "x"} if tool == "echo" else {"a": 1, "b": 1}, key)
        faults.script[tool] = []
        want_sent, want_charge = expected(tool, steps)
        assert faults.sent_to(tool) - sent_before == want_sent, (steps, reply)
        left -= want_charge
        assert gw.balance(key) == left, (steps, reply)
    balance = gw.client.get("/balance", headers={"X-API-Key": key}).json()
    assert balance["credits"] + balance["totalSpent"] == initial
