"""Multi-server mode: one gateway, several backends from a config file, tools named `prefix:tool`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    ECHO_SERVER,
    PYTHON,
    TIME_SERVER,
    Gateway,
    echo_http_server,
    node_server,
    running_gateway,
    text_of,
    usage_events,
    write_config,
)

pytestmark = pytest.mark.e2e

PRICES = {"local:add": 2, "remote:add": 3, "time:get_current_time": 4}


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("multi")
    with echo_http_server() as remote:
        config = {
            "servers": [
                {"prefix": "local", "serverCommand": PYTHON, "serverArgs": [ECHO_SERVER]},
                {"prefix": "time", "serverCommand": TIME_SERVER},
                {"prefix": "everything", "serverCommand": node_server("mcp-server-everything")},
                {"prefix": "remote", "remoteUrl": remote.url},
            ],
            "toolPricing": {name: {"creditsPerCall": credits} for name, credits in PRICES.items()},
            "globalRateLimitPerMin": 0,
        }
        with running_gateway("--config", write_config(directory, config)) as gw:
            yield gw


def tools_of(gw: Gateway) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in gw.rpc("tools/list").json()["result"]["tools"]}


def test_every_backends_tools_appear_prefixed(multi: Gateway) -> None:
    assert multi.ready["transport"] == "multi"
    tools = tools_of(multi)
    assert {
        "local:add",
        "local:echo",
        "remote:add",
        "remote:echo",
        "time:get_current_time",
        "time:convert_time",
        "everything:get-sum",
    } <= set(tools)
    assert not [name for name in tools if ":" not in name]
    for name, credits in PRICES.items():
        assert tools[name]["_pricing"]["creditsPerCall"] == credits
    assert tools["local:echo"]["_pricing"]["creditsPerCall"] == 1
    assert tools["everything:get-sum"]["_pricing"]["creditsPerCall"] == 1
    pricing = {t["name"]: t["creditsPerCall"] for t in multi.client.get("/pricing").json()["tools"]}
    assert {name: pricing[name] for name in PRICES} == PRICES
    assert multi.client.get("/info").json()["features"]["multiServer"] is True


def test_one_key_pays_for_every_backend_at_its_own_price(multi: Gateway) -> None:
    key = multi.create_key(11, name="multi")
    assert multi.call_tool("local:add", {"a": 1, "b": 2}, key)["result"]["structuredContent"] == {"result": 3}
    assert multi.balance(key) == 9
    assert multi.call_tool("remote:add", {"a": 5, "b": 5}, key)["result"]["structuredContent"] == {"result": 10}
    assert multi.balance(key) == 6
    now = json.loads(text_of(multi.call_tool("time:get_current_time", {"timezone": "Europe/Paris"}, key)))
    assert now["timezone"] == "Europe/Paris"
    assert multi.balance(key) == 2
    assert "The sum of 1 and 1 is 2" in text_of(multi.call_tool("everything:get-sum", {"a": 1, "b": 1}, key))
    assert multi.balance(key) == 1

    denied = multi.call_tool("remote:add", {"a": 1, "b": 1}, key)
    assert denied["error"]["code"] == -32402
    assert denied["error"]["data"]["tool"] == "remote:add"
    assert denied["error"]["data"]["creditsRequired"] == 3
    assert text_of(multi.call_tool("local:echo", {"text": "last credit"}, key)) == "last credit"
    assert multi.balance(key) == 0
    events = usage_events(multi, "multi")
    assert [(e["tool"], e["creditsCharged"]) for e in events if e["allowed"]] == [
        ("local:add", 2),
        ("remote:add", 3),
        ("time:get_current_time", 4),
        ("everything:get-sum", 1),
        ("local:echo", 1),
    ]


def test_unknown_prefix_or_bare_tool_name_is_rejected_without_charge(multi: Gateway) -> None:
    key = multi.create_key(1)
    for name in ("nowhere:add", "add", "local:"):
        reply = multi.call_tool(name, {"a": 1, "b": 1}, key)
        assert reply["error"]["code"] == -32602, reply
    assert multi.balance(key) == 1


def test_tool_acls_name_prefixed_tools(multi: Gateway) -> None:
    only_local = multi.create_key(10, allowedTools=["local:add"])
    assert multi.call_tool("local:add", {"a": 1, "b": 1}, only_local)["result"]["structuredContent"] == {"result": 2}
    denied = multi.call_tool("remote:add", {"a": 1, "b": 1}, only_local)
    assert denied["error"]["data"]["reason"] == "tool_not_allowed"
    no_remote = multi.create_key(10, deniedTools=["remote:add"])
    assert multi.call_tool("remote:add", {"a": 1, "b": 1}, no_remote)["error"]["data"]["reason"] == "tool_not_allowed"
    assert "result" in multi.call_tool("local:add", {"a": 1, "b": 1}, no_remote)
    assert (multi.balance(only_local), multi.balance(no_remote)) == (8, 8)


def test_a_prefixed_tool_price_can_also_come_from_the_flag(tmp_path: Path) -> None:
    config = {
        "servers": [
            {"prefix": "a", "serverCommand": PYTHON, "serverArgs": [ECHO_SERVER]},
            {"prefix": "b", "serverCommand": PYTHON, "serverArgs": [ECHO_SERVER]},
        ]
    }
    with running_gateway(
        "--config", write_config(tmp_path, config), "--rate-limit", "0", "--tool-price", "b:add:5"
    ) as gw:
        key = gw.create_key(6)
        assert gw.call_tool("a:add", {"a": 1, "b": 1}, key)["result"]["structuredContent"] == {"result": 2}
        assert gw.call_tool("b:add", {"a": 2, "b": 2}, key)["result"]["structuredContent"] == {"result": 4}
        assert gw.balance(key) == 0
