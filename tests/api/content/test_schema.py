"""Tools' input schemas (content/schema.py): GET/POST/DELETE /admin/tools/schema and calls refused before
any charge when their arguments do not match."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paygate.content import schema as schema_module
from tests.api.content.support import GateEvents
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

ECHO_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string", "maxLength": 10, "pattern": "^[a-z ]*$"}},
    "required": ["text"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def sgw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "echo:2") as gw:
        yield gw


@pytest.fixture(autouse=True)
def no_schemas(sgw: InProcessGateway) -> Iterator[None]:
    yield
    for registered in listing(sgw)["schemas"]:
        sgw.client.delete("/admin/tools/schema", params={"tool": registered["tool"]}, headers=sgw.admin())


def listing(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/tools/schema", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def register(gw: InProcessGateway, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return gw.client.post("/admin/tools/schema", json=body, headers=headers or gw.admin())


def call(gw: InProcessGateway, name: str, arguments: Any, key: str) -> dict[str, Any]:
    return dict(gw.rpc("tools/call", {"name": name, "arguments": arguments}, key=key).json())


def test_a_call_that_fails_the_schema_gets_32602_with_its_paths_and_is_not_charged(sgw: InProcessGateway) -> None:
    gate = GateEvents(sgw)
    resp = register(sgw, {"tool": "echo", "schema": ECHO_SCHEMA})
    assert resp.status_code == 200, resp.text
    assert resp.json()["schema"]["tool"] == "echo" and resp.json()["schema"]["createdBy"]
    key = sgw.create_key(10)
    bad = call(sgw, "echo", {"text": "HELLO WORLD, too long", "extra": 1}, key)
    assert bad["error"]["code"] == -32602, bad
    data = bad["error"]["data"]
    assert data["reason"] == "invalid_arguments" and data["tool"] == "echo"
    paths = {e["path"] for e in data["errors"]}
    assert paths == {"$", "$.text"}  # additionalProperties at the root; maxLength and pattern on text
    assert all(e["message"] for e in data["errors"])
    assert sgw.balance(key) == 10  # refused before any charge
    assert call(sgw, "echo", {}, key)["error"]["data"]["errors"][0]["message"] == "'text' is a required property"
    good = call(sgw, "echo", {"text": "hi there"}, key)
    assert good["result"]["content"][0]["text"] == "hi there"
    assert sgw.balance(key) == 8
    metrics = sgw.client.get("/metrics").text
    assert 'paygate_schema_rejections_total{tool="echo"} 2.0' in metrics
    assert [e["credits"] for e in gate.allowed()] == [2]  # the one valid call; refusals never reach the gate


def test_other_tools_and_callers_the_gate_refuses_are_not_validated(sgw: InProcessGateway) -> None:
    assert register(sgw, {"tool": "echo", "schema": ECHO_SCHEMA}).status_code == 200
    key = sgw.create_key(10)
    assert call(sgw, "add", {"a": 1, "b": 2}, key)["result"]["structuredContent"] == {"result": 3}
    no_key = sgw.rpc("tools/call", {"name": "echo", "arguments": {"text": 5}}).json()
    assert no_key["error"]["data"]["reason"] != "invalid_arguments"  # the gate's own refusal: no key
    denied = sgw.create_key(10, deniedTools=["echo"])
    assert call(sgw, "echo", {"text": 5}, denied)["error"]["data"]["reason"] == "tool_not_allowed"
    poor = sgw.create_key(1)  # echo costs 2: the gate refuses; with bad arguments the schema answers first
    assert call(sgw, "echo", {"text": 5}, poor)["error"]["data"]["reason"] == "invalid_arguments"
    assert sgw.balance(poor) == 1


def test_the_failure_list_is_bounded(sgw: InProcessGateway) -> None:
    props = {f"p{i}": {"type": "integer"} for i in range(40)}
    assert register(sgw, {"tool": "echo", "schema": {"type": "object", "properties": props}}).status_code == 200
    key = sgw.create_key(10)
    reply = call(sgw, "echo", {f"p{i}": "x" * 500 for i in range(40)}, key)
    errors = reply["error"]["data"]["errors"]
    assert len(errors) == schema_module.MAX_ERRORS
    assert all(len(e["message"]) <= schema_module.MAX_MESSAGE for e in errors)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"tool": "echo", "schema": {"type": "nonsense"}}, 400),
        ({"tool": "echo", "schema": {"minLength": -1}}, 400),
        ({"tool": "echo", "schema": {"$ref": "https://example.com/s.json"}}, 400),
        ({"tool": "echo", "schema": []}, 400),
        ({"tool": "echo"}, 400),
        ({"tool": "", "schema": {}}, 400),
        ({"tool": "echo", "schema": {}, "extra": 1}, 400),
        ({"tool": "echo", "schema": {"description": "x" * (64 * 1024)}}, 413),
    ],
)
def test_refusals_change_nothing(sgw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    assert register(sgw, {"tool": "add", "schema": {"type": "object"}}).status_code == 200
    before = listing(sgw)
    resp = register(sgw, body)
    assert resp.status_code == status, resp.text
    assert "error" in resp.json()
    assert listing(sgw) == before


def test_get_one_delete_and_events(sgw: InProcessGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    assert register(sgw, {"tool": "echo", "schema": ECHO_SCHEMA}).status_code == 200
    one = sgw.client.get("/admin/tools/schema", params={"tool": "echo"}, headers=sgw.admin())
    assert one.status_code == 200 and one.json()["schema"] == ECHO_SCHEMA
    assert sgw.client.get("/admin/tools/schema", params={"tool": "add"}, headers=sgw.admin()).status_code == 404
    assert sgw.client.delete("/admin/tools/schema", params={"tool": "add"}, headers=sgw.admin()).status_code == 404
    assert sgw.client.delete("/admin/tools/schema", headers=sgw.admin()).status_code == 400
    gone = sgw.client.delete("/admin/tools/schema", params={"tool": "echo"}, headers=sgw.admin())
    assert gone.status_code == 200 and gone.json()["removed"]["tool"] == "echo"
    key = sgw.create_key(10)
    assert "result" in call(sgw, "echo", {"text": "ANYTHING GOES HERE"}, key)
    assert sgw.events("content.schema_set")[-1]["data"]["tool"] == "echo"
    assert sgw.events("content.schema_removed")[-1]["data"] == {"tool": "echo"}
    monkeypatch.setattr(schema_module, "MAX_SCHEMAS", 1)
    assert register(sgw, {"tool": "echo", "schema": {}}).status_code == 200
    assert register(sgw, {"tool": "add", "schema": {}}).status_code == 413
    assert register(sgw, {"tool": "echo", "schema": {"type": "object"}}).status_code == 200  # replacing


def test_viewers_read_admins_write(sgw: InProcessGateway) -> None:
    assert sgw.client.get("/admin/tools/schema").status_code == 401
    viewer = sgw.client.post("/admin/keys", headers=sgw.admin(), json={"name": "schema viewer", "role": "viewer"})
    headers = {"X-Admin-Key": viewer.json()["key"]}
    assert sgw.client.get("/admin/tools/schema", headers=headers).status_code == 200
    assert register(sgw, {"tool": "echo", "schema": {}}, headers).status_code == 403
    assert listing(sgw)["schemas"] == []


def test_schemas_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-schemas") as gw:
        assert register(gw, {"tool": "echo", "schema": ECHO_SCHEMA}).status_code == 200
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-schemas") as gw:
        assert [s["tool"] for s in listing(gw)["schemas"]] == ["echo"]
        key = gw.create_key(5)
        assert call(gw, "echo", {"text": 1}, key)["error"]["data"]["reason"] == "invalid_arguments"
        assert gw.balance(key) == 5


def test_the_backends_own_input_schemas_when_asked(tmp_path: Path) -> None:
    config = tmp_path / "paygate.json"
    config.write_text('{"validateBackendSchemas": true}')
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", str(config))
    with running_inprocess_gateway(*args) as gw:
        assert listing(gw)["validateBackendSchemas"] is True
        key = gw.create_key(10)
        bad = call(gw, "add", {"a": "one", "b": 2}, key)
        assert bad["error"]["data"]["errors"] == [{"path": "$.a", "message": "'one' is not of type 'integer'"}]
        assert gw.balance(key) == 10
        assert call(gw, "add", {"a": 1, "b": 2}, key)["result"]["structuredContent"] == {"result": 3}
        # a registered schema wins over the backend's
        assert register(gw, {"tool": "add", "schema": {"type": "object"}}).status_code == 200
        assert "error" not in call(gw, "add", {"a": 1, "b": 2, "c": "x"}, key)


def test_batches_and_tasks_of_a_tool_with_content_controls_are_refused_not_run_unchecked(
    sgw: InProcessGateway,
) -> None:
    assert register(sgw, {"tool": "echo", "schema": ECHO_SCHEMA}).status_code == 200
    key = sgw.create_key(10)
    calls = [{"name": "add", "arguments": {"a": 1, "b": 2}}, {"name": "echo", "arguments": {"text": 5}}]
    batch = sgw.rpc("tools/call_batch", {"calls": calls}, key=key).json()
    assert batch["error"]["code"] == -32602 and batch["error"]["data"] == {"reason": "content_controls", "tool": "echo"}
    task = sgw.rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}, "task": {}}, key=key).json()
    assert task["error"]["data"]["reason"] == "content_controls"
    assert sgw.balance(key) == 10
    fine = sgw.rpc("tools/call_batch", {"calls": calls[:1]}, key=key).json()
    assert fine["result"]["results"][0]["result"]["structuredContent"] == {"result": 3}
