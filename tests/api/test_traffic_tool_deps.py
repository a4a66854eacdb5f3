"""Tool dependencies (traffic/tool_deps.py): GET/POST/DELETE /admin/tool-deps and calls that need another first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

ARGS = ("--server", ECHO_COMMAND, "--rate-limit", "0")


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway(*ARGS) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def no_rules(gw: InProcessGateway) -> Iterator[None]:
    yield
    for rule in listing(gw)["dependencies"]:
        gw.client.delete("/admin/tool-deps", params={"tool": rule["tool"]}, headers=gw.admin())


def listing(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/tool-deps", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def set_rule(gw: InProcessGateway, body: dict[str, Any]) -> httpx.Response:
    return gw.client.post("/admin/tool-deps", json=body, headers=gw.admin())


def echo(gw: InProcessGateway, key: str) -> httpx.Response:
    return gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "go"}}, key=key)


def add(gw: InProcessGateway, key: str, a: Any = 1) -> httpx.Response:
    return gw.rpc("tools/call", {"name": "add", "arguments": {"a": a, "b": 2}}, key=key)


def test_a_hard_dependency_refuses_before_any_charge_until_the_upstream_tool_succeeds(gw: InProcessGateway) -> None:
    resp = set_rule(gw, {"tool": "echo", "dependsOn": ["add"]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["dependency"]["hard"] is True and resp.json()["warnings"] == []
    key = gw.create_key(10)
    refused = echo(gw, key).json()["error"]
    assert refused["data"]["reason"] == "dependency_not_met" and refused["data"]["missing"] == ["add"]
    assert refused["data"]["httpStatus"] == 424
    assert gw.balance(key) == 10
    assert add(gw, key).json()["result"]["structuredContent"] == {"result": 3}
    assert echo(gw, key).json()["result"]["content"][0]["text"] == "go"
    assert gw.balance(key) == 8
    other = gw.create_key(10)  # another key's upstream call does not count for this one
    assert echo(gw, other).json()["error"]["data"]["reason"] == "dependency_not_met"
    assert 'paygate_tool_dependency_refusals_total{tool="echo"}' in gw.client.get("/metrics").text


def test_a_failed_upstream_call_blocks_downstream_again(gw: InProcessGateway) -> None:
    assert set_rule(gw, {"tool": "echo", "dependsOn": ["add"]}).status_code == 200
    key = gw.create_key(10)
    assert "result" in add(gw, key).json()
    failed = add(gw, key, "not a number").json()
    assert failed["result"]["isError"] is True
    assert echo(gw, key).json()["error"]["data"]["reason"] == "dependency_not_met"


def test_a_soft_dependency_warns_and_lets_the_call_through(gw: InProcessGateway) -> None:
    assert set_rule(gw, {"tool": "echo", "dependsOn": ["add"], "hard": False}).status_code == 200
    key = gw.create_key(10)
    reply = echo(gw, key)
    assert reply.json()["result"]["content"][0]["text"] == "go"
    assert reply.headers["x-dependency-warning"] == "missing: add"
    assert gw.balance(key) == 9
    assert listing(gw)["stats"]["warned"] >= 1


def test_cycles_self_dependencies_and_unknown_tools_are_refused_and_change_nothing(gw: InProcessGateway) -> None:
    assert set_rule(gw, {"tool": "echo", "dependsOn": ["add"]}).status_code == 200
    assert listing(gw)["order"] == ["add", "echo"]
    before = listing(gw)["dependencies"]
    cycle = set_rule(gw, {"tool": "add", "dependsOn": ["echo"]})
    assert cycle.status_code == 409 and "cycle" in cycle.json()["error"]
    assert set_rule(gw, {"tool": "add", "dependsOn": ["add"]}).status_code == 400
    assert set_rule(gw, {"tool": "add", "dependsOn": ["no_such_tool"]}).status_code == 400
    assert set_rule(gw, {"tool": "add", "dependsOn": []}).status_code == 400
    assert set_rule(gw, {"tool": "add", "dependsOn": ["echo"], "windowSeconds": 0}).status_code == 400
    assert listing(gw)["dependencies"] == before


def test_delete_and_roles(gw: InProcessGateway) -> None:
    assert gw.client.delete("/admin/tool-deps", params={"tool": "echo"}, headers=gw.admin()).status_code == 404
    assert set_rule(gw, {"tool": "echo", "dependsOn": ["add"]}).status_code == 200
    made = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "deps viewer", "role": "viewer"})
    viewer = {"X-Admin-Key": made.json()["key"]}
    assert gw.client.get("/admin/tool-deps", headers=viewer).status_code == 200
    denied = gw.client.post("/admin/tool-deps", headers=viewer, json={"tool": "add", "dependsOn": ["echo"]})
    assert denied.status_code == 403
    gone = gw.client.delete("/admin/tool-deps", params={"tool": "echo"}, headers=gw.admin())
    assert gone.status_code == 200 and gone.json()["removed"]["dependsOn"] == ["add"]
    key = gw.create_key(5)
    assert "result" in echo(gw, key).json()
    assert [e["data"]["tool"] for e in gw.events("tool_deps.removed")][-1] == "echo"


def test_rules_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with running_inprocess_gateway(*ARGS, state_file=state, admin_key="admin-key-for-deps") as first:
        assert set_rule(first, {"tool": "echo", "dependsOn": ["add"], "windowSeconds": 60}).status_code == 200
    with running_inprocess_gateway(*ARGS, state_file=state, admin_key="admin-key-for-deps") as second:
        [rule] = listing(second)["dependencies"]
        assert rule["windowSeconds"] == 60 and rule["createdBy"]
        key = second.create_key(5)
        assert echo(second, key).json()["error"]["data"]["reason"] == "dependency_not_met"


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.sampled_from(["echo", "add", "add_fails"]), min_size=1, max_size=12))
def test_credits_are_conserved_and_echo_runs_only_after_a_successful_add(
    gw: InProcessGateway, calls: list[str]
) -> None:
    """A model: echo is admitted (and charged 1) only when the key's latest add succeeded; an add is always
    admitted and charged (a tool error is charged like any call: no refundOnFailure here)."""
    if not listing(gw)["dependencies"]:
        assert set_rule(gw, {"tool": "echo", "dependsOn": ["add"]}).status_code == 200
    key = gw.create_key(100)
    spent, ready = 0, False
    for name in calls:
        if name == "echo":
            reply = echo(gw, key).json()
            assert ("result" in reply) is ready
            spent += 1 if ready else 0
        else:
            ok = name == "add"
            reply = add(gw, key, 1 if ok else "x").json()
            assert reply["result"].get("isError", False) is (not ok)
            spent += 1
            ready = ok
    assert gw.balance(key) == 100 - spent


def test_a_batch_or_a_task_cannot_go_around_a_hard_dependency(gw: InProcessGateway) -> None:
    assert set_rule(gw, {"tool": "echo", "dependsOn": ["add"]}).status_code == 200
    key = gw.create_key(10)
    calls = [{"name": "add", "arguments": {"a": 1, "b": 1}}, {"name": "echo", "arguments": {"text": "x"}}]
    error = gw.rpc("tools/call_batch", {"calls": calls}, key=key).json()["error"]
    assert error["data"]["reason"] == "dependency_not_met" and error["data"]["failedIndex"] == 1
    assert "nothing was charged or run" in error["message"]
    task = {"name": "echo", "arguments": {"text": "x"}, "task": {}}
    assert gw.rpc("tools/call", task, key=key).json()["error"]["data"]["reason"] == "dependency_not_met"
    assert gw.balance(key) == 10
    assert "result" in add(gw, key).json()
    assert "result" in gw.rpc("tools/call_batch", {"calls": calls[1:]}, key=key).json()
    assert gw.balance(key) == 8
