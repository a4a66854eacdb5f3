"""Tool aliases (traffic/aliases.py): GET/POST/DELETE /admin/tool-aliases and the call under an old name."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paygate.traffic import aliases as alias_module
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND


@pytest.fixture(scope="module")
def agw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "add:3") as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def no_aliases(agw: InProcessGateway) -> Iterator[None]:
    yield
    for alias in listing(agw)["aliases"]:
        agw.client.delete("/admin/tool-aliases", params={"from": alias["from"]}, headers=agw.admin())


def listing(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/tool-aliases", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def set_alias(gw: InProcessGateway, body: dict[str, Any]) -> httpx.Response:
    return gw.client.post("/admin/tool-aliases", json=body, headers=gw.admin())


def call(gw: InProcessGateway, name: str, arguments: dict[str, Any], key: str) -> httpx.Response:
    return gw.rpc("tools/call", {"name": name, "arguments": arguments}, key=key)


def test_a_call_to_the_old_name_runs_as_the_real_tool_at_its_price_with_deprecation_headers(
    agw: InProcessGateway,
) -> None:
    body = {"from": "sum", "to": "add", "sunset": "2027-06-30T00:00:00Z", "link": "https://docs.example/add"}
    resp = set_alias(agw, body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["alias"]["to"] == "add" and resp.json()["warnings"] == []
    key = agw.create_key(10, name="alias-caller")
    reply = call(agw, "sum", {"a": 40, "b": 2}, key)
    assert reply.json()["result"]["structuredContent"] == {"result": 42}
    assert agw.balance(key) == 7  # add's price (3), not the default (1)
    assert reply.headers["deprecation"].startswith("@")
    assert email.utils.parsedate_to_datetime(reply.headers["sunset"]).year == 2027
    assert reply.headers["link"] == '<https://docs.example/add>; rel="deprecation"'
    usage = agw.client.get("/usage", headers=agw.admin()).json()["events"]
    assert [e["tool"] for e in usage if e["keyName"] == "alias-caller"] == ["add"]  # reports use the real name
    real = call(agw, "add", {"a": 1, "b": 1}, key)
    assert "deprecation" not in real.headers and agw.balance(key) == 4
    [view] = listing(agw)["aliases"]
    assert view["calls"] == 1 and view["from"] == "sum" and view["createdBy"]
    assert 'paygate_tool_alias_calls_total{alias="sum"} 1.0' in agw.client.get("/metrics").text
    tools = {t["name"] for t in agw.rpc("tools/list").json()["result"]["tools"]}
    assert "sum" not in tools and "add" in tools  # aliases are not listed: clients should move
    [event] = [e for e in agw.events("traffic.alias_set") if e["data"]["alias"] == "sum"]
    assert event["data"]["to"] == "add"


def test_the_key_acl_is_checked_against_the_real_name(agw: InProcessGateway) -> None:
    assert set_alias(agw, {"from": "sum", "to": "add"}).status_code == 200
    denied = agw.create_key(10, deniedTools=["add"])
    reply = call(agw, "sum", {"a": 1, "b": 2}, denied).json()
    assert reply["error"]["data"]["reason"] == "tool_not_allowed"
    assert agw.balance(denied) == 10
    allowed = agw.create_key(10, allowedTools=["add"])
    assert "result" in call(agw, "sum", {"a": 1, "b": 2}, allowed).json()


def test_deprecation_can_be_a_date_or_off(agw: InProcessGateway) -> None:
    assert set_alias(agw, {"from": "sum", "to": "add", "deprecation": "2026-01-01"}).status_code == 200
    key = agw.create_key(10)
    assert call(agw, "sum", {"a": 1, "b": 2}, key).headers["deprecation"] == "@1767225600"
    assert set_alias(agw, {"from": "sum", "to": "add", "deprecation": False}).status_code == 200
    reply = call(agw, "sum", {"a": 1, "b": 2}, key)
    assert "deprecation" not in reply.headers and "result" in reply.json()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"from": "sum", "to": "plus"}, 409),  # to an alias: a chain
        ({"from": "x", "to": "sum"}, 409),
        ({"from": "add", "to": "echo"}, 409),  # a real tool may not be hidden
        ({"from": "x", "to": "nope"}, 400),  # not a tool the server lists
        ({"from": "x", "to": "x"}, 400),
        ({"from": "", "to": "add"}, 400),
        ({"from": "a b", "to": "add"}, 400),
        ({"from": "x", "to": "add", "sunset": "soon"}, 400),
        ({"from": "x", "to": "add", "link": "javascript:alert(1)"}, 400),
        ({"from": "x", "to": "add", "extra": 1}, 400),
        ({"to": "add"}, 400),
    ],
)
def test_refusals_change_nothing(agw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    assert set_alias(agw, {"from": "sum", "to": "add"}).status_code == 200
    assert set_alias(agw, {"from": "plus", "to": "add"}).status_code == 200
    before = listing(agw)
    resp = set_alias(agw, body)
    assert resp.status_code == status, resp.text
    assert listing(agw) == before


def test_chains_are_refused_both_ways(agw: InProcessGateway) -> None:
    assert set_alias(agw, {"from": "sum", "to": "add"}).status_code == 200
    assert set_alias(agw, {"from": "total", "to": "sum"}).status_code == 409  # to an alias
    assert set_alias(agw, {"from": "add2", "to": "echo"}).status_code == 200
    assert set_alias(agw, {"from": "sum2", "to": "add2"}).status_code == 409
    assert [a["from"] for a in listing(agw)["aliases"]] == ["add2", "sum"]


def test_delete_and_the_bound(agw: InProcessGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    assert agw.client.delete("/admin/tool-aliases", params={"from": "none"}, headers=agw.admin()).status_code == 404
    assert agw.client.delete("/admin/tool-aliases", headers=agw.admin()).status_code == 400
    monkeypatch.setattr(alias_module, "MAX_ALIASES", 2)
    assert set_alias(agw, {"from": "a1", "to": "add"}).status_code == 200
    assert set_alias(agw, {"from": "a2", "to": "add"}).status_code == 200
    assert set_alias(agw, {"from": "a3", "to": "add"}).status_code == 413
    assert set_alias(agw, {"from": "a2", "to": "echo"}).status_code == 200  # replacing is not adding
    resp = agw.client.delete("/admin/tool-aliases", params={"from": "a1"}, headers=agw.admin())
    assert resp.status_code == 200 and resp.json()["removed"]["from"] == "a1"
    key = agw.create_key(5)
    assert call(agw, "a1", {"a": 1, "b": 2}, key).json()["error"]["code"] == -32602  # unknown tool again
    assert agw.events("traffic.alias_removed")[-1]["data"] == {"alias": "a1", "to": "add"}


def test_viewers_read_admins_write(agw: InProcessGateway) -> None:
    assert agw.client.get("/admin/tool-aliases").status_code == 401
    assert agw.client.post("/admin/tool-aliases", json={"from": "x", "to": "add"}).status_code == 401


def test_aliases_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-aliases") as gw:
        assert set_alias(gw, {"from": "sum", "to": "add", "link": "https://docs.example/x"}).status_code == 200
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-aliases") as gw:
        [alias] = listing(gw)["aliases"]
        assert alias["to"] == "add" and alias["link"] == "https://docs.example/x"
        key = gw.create_key(5)
        reply = call(gw, "sum", {"a": 2, "b": 2}, key)
        assert reply.json()["result"]["structuredContent"] == {"result": 4} and "link" in reply.headers


def test_an_alias_works_on_the_2026_07_28_wire(agw: InProcessGateway) -> None:
    assert set_alias(agw, {"from": "sum", "to": "add"}).status_code == 200
    key = agw.create_key(10)
    envelope = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "sum", "arguments": {"a": 1, "b": 2}, "_meta": envelope},
    }
    headers = {
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "sum",
        "Accept": "application/json, text/event-stream",
        "X-API-Key": key,
    }
    reply = agw.client.post("/mcp", json=body, headers=headers)
    assert reply.json()["result"]["structuredContent"] == {"result": 3}, reply.text
    assert agw.balance(key) == 7 and reply.headers["deprecation"].startswith("@")
