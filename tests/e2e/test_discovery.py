"""Dynamic tool discovery through the real CLI in front of our echo server: `tools/list` is three
meta-tools; listing and searching show the real tools (as the key may see them) for free; calling
through `paygate_call_tool` is gated and billed as the real tool."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ECHO_COMMAND, Gateway, running_gateway

pytestmark = pytest.mark.e2e

META = ["paygate_list_tools", "paygate_search_tools", "paygate_call_tool"]


def config(tmp_path: Path, **extra: Any) -> str:
    path = tmp_path / "paygate.json"
    command, *args = ECHO_COMMAND.split()
    path.write_text(
        json.dumps(
            {
                "serverCommand": command,
                "serverArgs": args,
                "globalRateLimitPerMin": 0,
                "toolPricing": {"add": {"creditsPerCall": 5}},
                **extra,
            }
        )
    )
    return str(path)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway("--config", config(tmp_path_factory.mktemp("discovery")), "--discovery", "dynamic") as g:
        yield g


def meta(gw: Gateway, tool: str, arguments: Any, key: str | None) -> dict[str, Any]:
    return gw.call_tool(tool, arguments, key)


def payload(answer: dict[str, Any]) -> dict[str, Any]:
    result = answer["result"]
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
    return dict(result["structuredContent"])


def real_tools(gw: Gateway) -> dict[str, int]:
    """Every tool the backend has, with its price, from the public pricing page."""
    return {t["name"]: t["creditsPerCall"] for t in gw.client.get("/pricing").json()["tools"]}


def test_tools_list_is_exactly_the_three_meta_tools_each_with_an_input_schema(gw: Gateway) -> None:
    tools = gw.rpc("tools/list").json()["result"]["tools"]
    assert [t["name"] for t in tools] == META
    for tool in tools:
        assert tool["inputSchema"]["type"] == "object" and tool["description"]
    by_name = {t["name"]: t for t in tools}
    assert by_name["paygate_search_tools"]["inputSchema"]["required"] == ["query"]
    assert by_name["paygate_call_tool"]["inputSchema"]["required"] == ["name"]
    assert by_name["paygate_list_tools"]["_pricing"]["creditsPerCall"] == 0


def test_listing_pages_through_every_real_tool_with_its_price_for_free(gw: Gateway) -> None:
    raw = gw.create_key(10)
    seen: dict[str, int] = {}
    cursor: str | None = None
    pages = 0
    while True:
        arguments: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = payload(meta(gw, "paygate_list_tools", arguments, raw))
        assert len(page["tools"]) <= 4 and page["total"] == len(real_tools(gw))
        seen.update({t["name"]: t["_pricing"]["creditsPerCall"] for t in page["tools"]})
        pages += 1
        cursor = page.get("nextCursor")
        if cursor is None:
            break
    assert seen == real_tools(gw) and seen["add"] == 5
    assert pages == -(-len(seen) // 4)
    assert gw.balance(raw) == 10  # listing is free


def test_listing_and_searching_show_only_what_the_keys_acl_allows(gw: Gateway) -> None:
    raw = gw.create_key(10, allowedTools=["echo", "add", "slow"], deniedTools=["slow"])
    listed = payload(meta(gw, "paygate_list_tools", {}, raw))
    assert sorted(t["name"] for t in listed["tools"]) == ["add", "echo"] and listed["total"] == 2
    assert payload(meta(gw, "paygate_search_tools", {"query": "sleep"}, raw)) == {"tools": [], "total": 0}


def test_search_matches_every_word_in_names_and_descriptions_best_name_matches_first(gw: Gateway) -> None:
    found = payload(meta(gw, "paygate_search_tools", {"query": "INTEGERS two"}, None))
    assert [t["name"] for t in found["tools"]] == ["add"]  # "Add two integers."
    slow = payload(meta(gw, "paygate_search_tools", {"query": "slow calls"}, None))
    assert slow["tools"][0]["name"] == "slow_calls"  # both words in its name
    limited = payload(meta(gw, "paygate_search_tools", {"query": "slow", "limit": 1}, None))
    assert len(limited["tools"]) == 1 and limited["total"] >= 2


def test_calling_through_the_meta_tool_is_billed_and_logged_as_the_real_tool(gw: Gateway) -> None:
    raw = gw.create_key(12, name="meta-caller")
    answer = meta(gw, "paygate_call_tool", {"name": "add", "arguments": {"a": 2, "b": 3}}, raw)
    assert answer["result"]["content"][0]["text"] == "5"
    assert gw.balance(raw) == 7
    usage = gw.client.get("/usage", headers=gw.admin()).json()["events"]
    assert [(e["tool"], e["creditsCharged"], e["allowed"]) for e in usage if e["keyName"] == "meta-caller"] == [
        ("add", 5, True)
    ]
    assert not {"paygate_call_tool", "paygate_list_tools"} & {e["tool"] for e in usage}
    logged = gw.client.get("/requests", params={"tool": "add"}, headers=gw.admin()).json()["requests"]
    assert logged and (logged[0]["tool"], logged[0]["credits"]) == ("add", 5)  # the gate event names the real tool


def test_the_meta_tool_is_gated_like_the_real_tool(gw: Gateway) -> None:
    raw = gw.create_key(100, deniedTools=["add"])
    data = meta(gw, "paygate_call_tool", {"name": "add", "arguments": {"a": 1, "b": 1}}, raw)["error"]["data"]
    assert (data["reason"], data["tool"]) == ("tool_not_allowed", "add")
    poor = gw.create_key(4)
    data = meta(gw, "paygate_call_tool", {"name": "add", "arguments": {"a": 1, "b": 1}}, poor)["error"]["data"]
    assert (data["reason"], data["creditsRequired"]) == ("insufficient_credits", 5)
    assert (
        meta(gw, "paygate_call_tool", {"name": "echo", "arguments": {"text": "x"}}, None)["error"]["data"]["reason"]
        == "missing_api_key"
    )
    assert gw.balance(raw) == 100 and gw.balance(poor) == 4


@pytest.mark.parametrize(
    ("tool", "arguments", "complaint"),
    [
        ("paygate_call_tool", {"name": "no_such_tool"}, "Unknown tool: no_such_tool"),
        ("paygate_call_tool", {"name": "paygate_call_tool", "arguments": {"name": "add"}}, "Unknown tool"),
        ("paygate_call_tool", {"arguments": {}}, "arguments.name must be a tool's name"),
        ("paygate_call_tool", {"name": "add", "arguments": [1]}, "arguments.arguments must be an object"),
        ("paygate_list_tools", {"cursor": "abc"}, "cursor must be a nextCursor"),
        ("paygate_list_tools", {"limit": 0}, "limit must be an integer from 1 to 100"),
        ("paygate_search_tools", {}, "query must be a string"),
        ("paygate_search_tools", {"query": "   "}, "query needs at least one word"),
    ],
)
def test_bad_meta_tool_arguments_are_invalid_params_and_cost_nothing(
    gw: Gateway, tool: str, arguments: dict[str, Any], complaint: str
) -> None:
    raw = gw.create_key(10)
    error = meta(gw, tool, arguments, raw)["error"]
    assert error["code"] == -32602 and complaint in error["message"]
    assert gw.balance(raw) == 10


def test_a_real_tool_called_by_its_own_name_still_works_and_is_billed(gw: Gateway) -> None:
    raw = gw.create_key(10)
    assert gw.call_tool("add", {"a": 1, "b": 1}, raw)["result"]["content"][0]["text"] == "2"
    assert gw.balance(raw) == 5


def test_the_config_key_and_the_env_var_turn_dynamic_discovery_on(tmp_path: Path) -> None:
    """The real CLI reading a config file and the environment; which source wins over which is
    tests/unit/test_config.py's (no process needed)."""
    with running_gateway("--config", config(tmp_path), env={"PAYGATE_DISCOVERY": "dynamic"}) as gw:
        assert [t["name"] for t in gw.rpc("tools/list").json()["result"]["tools"]] == META
