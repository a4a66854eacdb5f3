"""Transforms (content/transforms.py): GET/POST/PUT/DELETE /admin/transforms and what the backend and the
client see; never a way around the price or the ACL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paygate.content import transforms as transform_module
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND


@pytest.fixture(scope="module")
def tgw() -> Iterator[InProcessGateway]:
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "echo:2,add:5")
    with running_inprocess_gateway(*args) as gw:
        yield gw


@pytest.fixture(autouse=True)
def no_transforms(tgw: InProcessGateway) -> Iterator[None]:
    yield
    for t in listing(tgw)["transforms"]:
        tgw.client.delete("/admin/transforms", params={"id": t["id"]}, headers=tgw.admin())
    tgw.client.delete("/admin/tools/schema", params={"tool": "echo"}, headers=tgw.admin())


def listing(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/transforms", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def add(gw: InProcessGateway, body: dict[str, Any]) -> httpx.Response:
    return gw.client.post("/admin/transforms", json=body, headers=gw.admin())


def call(gw: InProcessGateway, name: str, arguments: dict[str, Any], key: str) -> dict[str, Any]:
    return dict(gw.rpc("tools/call", {"name": name, "arguments": arguments}, key=key).json())


def test_a_request_transform_changes_what_the_backend_sees(tgw: InProcessGateway) -> None:
    ops = [
        {"op": "rename", "from": "message", "to": "text"},
        {"op": "remove", "path": "debug"},
        {"op": "default", "path": "text", "value": "tool {{tool}} for {{keyName}}"},
    ]
    resp = add(tgw, {"tool": "ech*", "direction": "request", "operations": ops})
    assert resp.status_code == 200, resp.text
    key = tgw.create_key(10, name="transform-caller")
    renamed = call(tgw, "echo", {"message": "hello", "debug": True}, key)
    assert renamed["result"]["content"][0]["text"] == "hello"  # the echo server got {"text": "hello"}
    defaulted = call(tgw, "echo", {}, key)
    assert defaulted["result"]["content"][0]["text"] == "tool echo for transform-caller"
    assert tgw.balance(key) == 6  # echo's price, twice
    assert listing(tgw)["applied"]["request"] >= 2
    assert 'paygate_transforms_applied_total{direction="request"}' in tgw.client.get("/metrics").text
    assert tgw.events("content.transform_set")[-1]["data"]["tool"] == "ech*"


def test_order_is_priority_then_creation(tgw: InProcessGateway) -> None:
    later = {"tool": "echo", "direction": "request", "operations": [{"op": "set", "path": "text", "value": "B"}]}
    assert add(tgw, later).status_code == 200
    first = {**later, "priority": -1, "operations": [{"op": "set", "path": "text", "value": "A"}]}
    assert add(tgw, first).status_code == 200
    assert add(tgw, {**later, "operations": [{"op": "set", "path": "text", "value": "C"}]}).status_code == 200
    key = tgw.create_key(10)
    assert call(tgw, "echo", {"text": "x"}, key)["result"]["content"][0]["text"] == "C"  # applied A, B, then C
    assert [t["operations"][0]["value"] for t in listing(tgw)["transforms"]] == ["A", "B", "C"]


def test_a_response_transform_rewrites_the_result_after_settlement(tgw: InProcessGateway) -> None:
    ops = [
        {"op": "rename", "from": "structuredContent.result", "to": "structuredContent.sum"},
        {"op": "set", "path": "structuredContent.by", "value": "{{tool}}"},
    ]
    assert add(tgw, {"tool": "add", "direction": "response", "operations": ops}).status_code == 200
    key = tgw.create_key(10)
    reply = call(tgw, "add", {"a": 2, "b": 3}, key)
    assert reply["result"]["structuredContent"] == {"sum": 5, "by": "add"}
    assert tgw.balance(key) == 5


def test_a_transform_cannot_rename_the_tool_or_dodge_its_price_and_acl(tgw: InProcessGateway) -> None:
    ops = [{"op": "set", "path": "name", "value": "add"}]  # paths are inside arguments: this sets arguments.name
    assert add(tgw, {"tool": "echo", "direction": "request", "operations": ops}).status_code == 200
    key = tgw.create_key(10, deniedTools=["echo"])
    assert call(tgw, "echo", {"text": "hi"}, key)["error"]["data"]["reason"] == "tool_not_allowed"
    assert tgw.balance(key) == 10
    other = tgw.create_key(10)
    reply = call(tgw, "echo", {"text": "hi"}, other)
    assert reply["result"]["content"][0]["text"] == "hi"  # still echo: the tool the client named
    assert tgw.balance(other) == 8  # echo's price (2), not add's (5)


def test_request_transforms_run_before_schema_validation(tgw: InProcessGateway) -> None:
    schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    assert (
        tgw.client.post("/admin/tools/schema", json={"tool": "echo", "schema": schema}, headers=tgw.admin()).status_code
        == 200
    )
    key = tgw.create_key(10)
    assert call(tgw, "echo", {"message": "hi"}, key)["error"]["data"]["reason"] == "invalid_arguments"
    ops = [{"op": "rename", "from": "message", "to": "text"}]
    assert add(tgw, {"tool": "echo", "direction": "request", "operations": ops}).status_code == 200
    assert call(tgw, "echo", {"message": "hi"}, key)["result"]["content"][0]["text"] == "hi"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"tool": "echo", "direction": "request", "operations": [{"op": "explode", "path": "x"}]}, 400),
        ({"tool": "echo", "direction": "request", "operations": [{"op": "set", "path": "x"}]}, 400),
        ({"tool": "echo", "direction": "request", "operations": [{"op": "remove", "path": "a..b"}]}, 400),
        (
            {"tool": "echo", "direction": "request", "operations": [{"op": "set", "path": "x", "value": "{{secret}}"}]},
            400,
        ),
        ({"tool": "echo", "direction": "request", "operations": []}, 400),
        ({"tool": "echo", "direction": "sideways", "operations": [{"op": "remove", "path": "x"}]}, 400),
        (
            {"tool": "echo", "direction": "request", "operations": [{"op": "set", "path": "x", "value": "v" * 9000}]},
            413,
        ),
        ({"direction": "request", "operations": [{"op": "remove", "path": "x"}]}, 400),
    ],
)
def test_refusals_change_nothing(tgw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    assert (
        add(tgw, {"tool": "add", "direction": "request", "operations": [{"op": "remove", "path": "z"}]}).status_code
        == 200
    )
    before = listing(tgw)
    resp = add(tgw, body)
    assert resp.status_code == status, resp.text
    assert listing(tgw) == before


def test_put_replaces_and_delete_removes(tgw: InProcessGateway) -> None:
    body = {"tool": "echo", "direction": "request", "operations": [{"op": "set", "path": "text", "value": "one"}]}
    rule_id = add(tgw, body).json()["transform"]["id"]
    body["operations"] = [{"op": "set", "path": "text", "value": "two"}]
    put = tgw.client.put("/admin/transforms", params={"id": rule_id}, json=body, headers=tgw.admin())
    assert put.status_code == 200 and put.json()["transform"]["id"] == rule_id
    key = tgw.create_key(10)
    assert call(tgw, "echo", {"text": "x"}, key)["result"]["content"][0]["text"] == "two"
    assert tgw.client.put("/admin/transforms", params={"id": "nope"}, json=body, headers=tgw.admin()).status_code == 404
    assert tgw.client.delete("/admin/transforms", params={"id": rule_id}, headers=tgw.admin()).status_code == 200
    assert tgw.client.delete("/admin/transforms", params={"id": rule_id}, headers=tgw.admin()).status_code == 404
    assert call(tgw, "echo", {"text": "x"}, key)["result"]["content"][0]["text"] == "x"
    assert tgw.client.get("/admin/transforms").status_code == 401


def test_transforms_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    body = {"tool": "echo", "direction": "request", "operations": [{"op": "set", "path": "text", "value": "kept"}]}
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-transforms") as gw:
        assert add(gw, body).status_code == 200
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-transforms") as gw:
        assert len(listing(gw)["transforms"]) == 1
        key = gw.create_key(5)
        assert call(gw, "echo", {"text": "x"}, key)["result"]["content"][0]["text"] == "kept"


def test_content_stages_are_in_the_chain_only_while_something_is_registered(tgw: InProcessGateway) -> None:
    assert tgw.rt is not None
    traffic = tgw.rt.dispatcher.traffic

    def on() -> set[str]:
        return {s.name for s in traffic.calls_on} & {"transforms", "schema", "guardrails"}

    assert on() == set()
    body = {"tool": "echo", "direction": "request", "operations": [{"op": "remove", "path": "x"}]}
    rule_id = add(tgw, body).json()["transform"]["id"]
    schema = {"tool": "echo", "schema": {"type": "object"}}
    assert tgw.client.post("/admin/tools/schema", json=schema, headers=tgw.admin()).status_code == 200
    assert on() == {"transforms", "schema"}
    order = [s.name for s in traffic.calls_on]
    assert order.index("transforms") < order.index("schema")
    tgw.client.delete("/admin/transforms", params={"id": rule_id}, headers=tgw.admin())
    tgw.client.delete("/admin/tools/schema", params={"tool": "echo"}, headers=tgw.admin())
    assert on() == set()


def test_all_transforms_together_are_bounded(tgw: InProcessGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transform_module, "MAX_TOTAL_BYTES", 2000)
    op = {"op": "set", "path": "x", "value": "v" * 800}
    assert add(tgw, {"tool": "echo", "direction": "request", "operations": [op]}).status_code == 200
    before = listing(tgw)
    assert add(tgw, {"tool": "echo", "direction": "request", "operations": [op]}).status_code == 413
    assert listing(tgw)["transforms"] == before["transforms"]
