"""Approval workflows (traffic/approvals.py): a matching call waits for an admin; charged only if approved."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "add:5") as gateway:
        yield gateway


@pytest.fixture(scope="module")
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


@pytest.fixture(autouse=True)
def no_rules(gw: InProcessGateway) -> Iterator[None]:
    yield
    for rule in view(gw)["rules"]:
        gw.client.delete("/admin/approval-workflows", params={"id": rule["id"]}, headers=gw.admin())


def view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/approval-workflows", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def add_rule(gw: InProcessGateway, **body: Any) -> dict[str, Any]:
    resp = gw.client.post("/admin/approval-workflows", json=body, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["rule"])


def decide(gw: InProcessGateway, action: str, request_id: str, **extra: Any) -> httpx.Response:
    body = {"action": action, "requestId": request_id, **extra}
    return gw.client.post("/admin/approval-workflows", json=body, headers=gw.admin())


def call_later(gw: InProcessGateway, pool: ThreadPoolExecutor, key: str, tool: str = "add") -> Future[httpx.Response]:
    arguments = {"a": 1, "b": 2} if tool == "add" else {"text": "hi"}
    return pool.submit(gw.rpc, "tools/call", {"name": tool, "arguments": arguments}, key)


def waiting(gw: InProcessGateway, count: int = 1) -> list[dict[str, Any]]:
    """The pending requests, once `count` are there (the calls are in flight on other threads)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pending = view(gw)["pending"]
        if len(pending) >= count:
            return list(pending)
        time.sleep(0.01)  # polling for the other thread's call to arrive, not papering over a race
    raise AssertionError("no call came to wait for approval")


def test_an_approved_call_runs_and_is_charged_once(gw: InProcessGateway, pool: ThreadPoolExecutor) -> None:
    rule = add_rule(gw, name="pricey", condition="cost_threshold", value=5, timeoutSeconds=30)
    key = gw.create_key(20)
    future = call_later(gw, pool, key)
    [pending] = waiting(gw)
    assert pending["tool"] == "add" and pending["ruleId"] == rule["id"] and pending["keyMasked"]
    assert gw.balance(key) == 20  # nothing charged while it waits
    resp = decide(gw, "approve", pending["requestId"])
    assert resp.status_code == 200 and resp.json()["outcome"] == "approved"
    assert future.result(timeout=10).json()["result"]["structuredContent"] == {"result": 3}
    assert gw.balance(key) == 15
    assert view(gw)["rules"][0]["triggered"] == 1
    assert gw.events("approval.requested")[-1]["data"]["requestId"] == pending["requestId"]
    cheap = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}, key=key)  # price 1 < 5: no wait
    assert "result" in cheap.json() and gw.balance(key) == 14


def test_a_denied_call_is_refused_and_costs_nothing(gw: InProcessGateway, pool: ThreadPoolExecutor) -> None:
    add_rule(gw, name="adds", condition="tool_match", value="ad*")
    key = gw.create_key(20)
    future = call_later(gw, pool, key)
    [pending] = waiting(gw)
    assert decide(gw, "deny", pending["requestId"], reason="not today").status_code == 200
    error = future.result(timeout=10).json()["error"]
    assert error["data"]["reason"] == "approval_denied" and "not today" in error["message"]
    assert gw.balance(key) == 20
    assert decide(gw, "approve", pending["requestId"]).status_code == 404  # decided already, gone


def test_a_call_nobody_decides_on_expires_uncharged(gw: InProcessGateway) -> None:
    add_rule(gw, name="quick", condition="tool_match", value="add", timeoutSeconds=1)
    key = gw.create_key(20)
    error = gw.rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}, key=key).json()["error"]
    assert error["data"]["reason"] == "approval_timeout" and error["data"]["httpStatus"] == 408
    assert gw.balance(key) == 20
    assert view(gw)["stats"]["expired"] >= 1 and view(gw)["pending"] == []


def test_key_match_and_the_paths_that_cannot_wait(gw: InProcessGateway) -> None:
    add_rule(gw, name="interns", condition="key_match", value="intern-")
    intern = gw.create_key(20, name="intern-bob")
    calls = [{"name": "echo", "arguments": {"text": "x"}}]
    error = gw.rpc("tools/call_batch", {"calls": calls}, key=intern).json()["error"]
    assert error["data"]["reason"] == "approval_required" and error["data"]["failedIndex"] == 0
    task = {"name": "echo", "arguments": {"text": "x"}, "task": {}}
    assert gw.rpc("tools/call", task, key=intern).json()["error"]["data"]["reason"] == "approval_required"
    assert gw.balance(intern) == 20
    other = gw.create_key(20, name="staff-alice")
    assert "result" in gw.rpc("tools/call_batch", {"calls": calls}, key=other).json()


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "condition": "cost_threshold", "value": "5"},
        {"name": "x", "condition": "tool_match", "value": 5},
        {"name": "x", "condition": "nope", "value": "a"},
        {"name": "x", "condition": "tool_match", "value": "a", "timeoutSeconds": 0},
        {"action": "approve"},
        {"action": "maybe", "requestId": "apr_1"},
    ],
)
def test_bad_requests_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    resp = gw.client.post("/admin/approval-workflows", json=body, headers=gw.admin())
    assert resp.status_code == 400, resp.text
    assert view(gw)["rules"] == []


def test_names_are_unique_unknown_ids_are_404_and_viewers_only_read(gw: InProcessGateway) -> None:
    add_rule(gw, name="one", condition="tool_match", value="*")
    dup = gw.client.post(
        "/admin/approval-workflows", json={"name": "one", "condition": "tool_match", "value": "x"}, headers=gw.admin()
    )
    assert dup.status_code == 409
    assert gw.client.delete("/admin/approval-workflows", params={"id": "apw_x"}, headers=gw.admin()).status_code == 404
    assert decide(gw, "approve", "apr_unknown").status_code == 404
    made = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "apr viewer", "role": "viewer"})
    viewer = {"X-Admin-Key": made.json()["key"]}
    assert gw.client.get("/admin/approval-workflows", headers=viewer).status_code == 200
    refused = gw.client.post("/admin/approval-workflows", headers=viewer, json={"action": "approve", "requestId": "a"})
    assert refused.status_code == 403


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(decisions=st.lists(st.booleans(), min_size=1, max_size=4))
def test_only_approved_calls_are_charged(gw: InProcessGateway, pool: ThreadPoolExecutor, decisions: list[bool]) -> None:
    """Several calls wait at once; each is approved or denied: the balance moves by the approved ones only."""
    if not view(gw)["rules"]:
        add_rule(gw, name="all adds", condition="tool_match", value="add", timeoutSeconds=30)
    key = gw.create_key(100)
    futures = [call_later(gw, pool, key) for _ in decisions]
    pending = waiting(gw, len(decisions))
    for request, approve in zip(pending, decisions, strict=True):
        assert decide(gw, "approve" if approve else "deny", request["requestId"]).status_code == 200
    answers = [f.result(timeout=10).json() for f in futures]
    assert sum("result" in a for a in answers) == sum(decisions)
    assert gw.balance(key) == 100 - 5 * sum(decisions)
