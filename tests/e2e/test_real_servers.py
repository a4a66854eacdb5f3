"""The real CLI in front of real, third-party MCP servers over stdio, and under concurrent load.

server-everything and server-filesystem are the npm reference servers (tests/node); mcp-server-time
is the PyPI one. Missing node or packages make these tests fail, never skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ROOT, TIME_SERVER, Gateway, node_server, running_gateway, text_of, usage_events

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def everything() -> Iterator[Gateway]:
    binary = node_server("mcp-server-everything")  # its default transport is stdio
    with running_gateway("--server", binary, "--rate-limit", "0", "--tool-price", "get-sum:2") as gw:
        yield gw


def tools_of(gw: Gateway) -> dict[str, dict[str, Any]]:
    resp = gw.rpc("tools/list")
    assert resp.status_code == 200, resp.text
    return {t["name"]: t for t in resp.json()["result"]["tools"]}


# --- @modelcontextprotocol/server-everything ---------------------------------------------------


def test_everything_tools_are_discovered_with_prices(everything: Gateway) -> None:
    tools = tools_of(everything)
    assert {"echo", "get-sum", "get-tiny-image"} <= set(tools)
    assert tools["echo"]["_pricing"]["creditsPerCall"] == 1
    assert tools["get-sum"]["_pricing"]["creditsPerCall"] == 2
    assert tools["get-sum"]["inputSchema"]["properties"].keys() >= {"a", "b"}
    pricing = {t["name"]: t for t in everything.client.get("/pricing").json()["tools"]}
    assert pricing["get-sum"]["creditsPerCall"] == 2


def test_everything_calls_are_charged_and_blocked_at_zero(everything: Gateway) -> None:
    key = everything.create_key(3, name="everything")
    assert "hello gateway" in text_of(everything.call_tool("echo", {"message": "hello gateway"}, key))
    assert everything.balance(key) == 2
    assert "5" in text_of(everything.call_tool("get-sum", {"a": 2, "b": 3}, key))
    assert everything.balance(key) == 0

    denied = everything.call_tool("echo", {"message": "one more"}, key)
    assert denied["error"]["code"] == -32402
    assert denied["error"]["data"]["reason"] == "insufficient_credits"
    assert everything.balance(key) == 0
    events = usage_events(everything, "everything")
    assert [(e["tool"], e["allowed"], e["creditsCharged"]) for e in events] == [
        ("echo", True, 1),
        ("get-sum", True, 2),
        ("echo", False, 0),
    ]


def test_everything_resources_pass_through_free_but_need_a_key(everything: Gateway) -> None:
    key = everything.create_key(1)
    listed = everything.rpc("resources/list").json()["result"]["resources"]  # a free method
    uri = next(r["uri"] for r in listed if r["uri"].endswith("architecture.md"))
    anonymous = everything.rpc("resources/read", {"uri": uri}).json()
    assert anonymous["error"]["data"]["reason"] == "missing_api_key"
    read = everything.rpc("resources/read", {"uri": uri}, key=key).json()
    assert "Architecture" in read["result"]["contents"][0]["text"]
    assert everything.balance(key) == 1  # only tools/call costs credits


# --- @modelcontextprotocol/server-filesystem ----------------------------------------------------


def test_filesystem_write_and_read_back_through_the_gate(tmp_path: Path) -> None:
    root = tmp_path / "files"
    root.mkdir()
    binary = node_server("mcp-server-filesystem")
    with running_gateway(
        "--server", f"{binary} {root}", "--rate-limit", "0", "--tool-price", "write_file:2,read_text_file:1"
    ) as gw:
        assert {"write_file", "read_text_file", "list_directory"} <= set(tools_of(gw))
        key = gw.create_key(3)
        target = root / "note.txt"
        written = gw.call_tool("write_file", {"path": str(target), "content": "paid for\nline two"}, key)
        assert "isError" not in written["result"], written
        assert target.read_text() == "paid for\nline two"
        assert gw.balance(key) == 1

        read = gw.call_tool("read_text_file", {"path": str(target)}, key)
        assert text_of(read) == "paid for\nline two"
        assert gw.balance(key) == 0

        blocked = gw.call_tool("write_file", {"path": str(root / "free.txt"), "content": "x"}, key)
        assert blocked["error"]["code"] == -32402
        assert not (root / "free.txt").exists()  # a refused call never reaches the server
        assert gw.balance(key) == 0


# --- mcp-server-time (PyPI) -------------------------------------------------------------------


def test_time_server_discovery_and_a_call_charged_per_tool_price() -> None:
    with running_gateway("--server", TIME_SERVER, "--rate-limit", "0", "--tool-price", "get_current_time:3") as gw:
        tools = tools_of(gw)
        assert {"get_current_time", "convert_time"} <= set(tools)
        assert tools["get_current_time"]["_pricing"]["creditsPerCall"] == 3
        assert tools["convert_time"]["_pricing"]["creditsPerCall"] == 1
        key = gw.create_key(5)

        reply = gw.call_tool("get_current_time", {"timezone": "UTC"}, key)
        now = json.loads(text_of(reply))
        assert now["timezone"] == "UTC"
        assert datetime.fromisoformat(now["datetime"]).utcoffset() is not None
        assert gw.balance(key) == 2

        denied = gw.call_tool("get_current_time", {"timezone": "UTC"}, key)
        assert denied["error"]["data"]["creditsRequired"] == 3
        assert denied["error"]["data"]["creditsRemaining"] == 2
        assert gw.balance(key) == 2


def test_the_readme_sdk_example_runs_against_the_readme_gateway() -> None:
    """examples/client.py (the README's "Using it") with the official SDK, as a user would run it."""
    with running_gateway("--server", TIME_SERVER) as gw:
        key = gw.create_key(10)
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "client.py"), gw.url],
            env={**os.environ, "KEY": key},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "tools: ['get_current_time', 'convert_time']" in result.stdout
        assert '"timezone": "UTC"' in result.stdout
        assert "balance: 9" in result.stdout
        assert gw.balance(key) == 9


def test_the_embedding_example_runs_a_gateway_in_its_own_program() -> None:
    """examples/embed.py (docs/embedding.md): the gateway started by paygate.embed in front of the time
    server, a paid call through the SDK at the price the program set, the balance, a clean stop."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "embed.py"), TIME_SERVER], capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr
    assert '"timezone": "UTC"' in result.stdout
    assert "credits left: 8" in result.stdout  # 10 less the 2 the program priced get_current_time at


# --- concurrency through the real CLI (our echo server over stdio) --------------------------------


async def _post_all(gw: Gateway, bodies: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=gw.url, timeout=30.0, limits=limits) as client:
        replies = await asyncio.gather(*(client.post("/mcp", json=b, headers={"X-API-Key": key}) for b in bodies))
    return [r.json() for r in replies]


async def test_fifty_clients_sharing_jsonrpc_id_1_each_get_their_own_answer(echo_gateway: Gateway) -> None:
    n = 50
    key = echo_gateway.create_key(n)
    bodies = [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": i, "b": 1000}}}
        for i in range(n)
    ]
    replies = await _post_all(echo_gateway, bodies, key)
    assert [r["id"] for r in replies] == [1] * n
    assert [r["result"]["structuredContent"]["result"] for r in replies] == [i + 1000 for i in range(n)]
    assert echo_gateway.balance(key) == 0


async def test_racing_for_the_last_credits_exactly_k_succeed(echo_gateway: Gateway) -> None:
    credits, callers = 5, 30
    key = echo_gateway.create_key(credits, name="race")
    bodies = [
        {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "add", "arguments": {"a": i, "b": i}}}
        for i in range(callers)
    ]
    replies = await _post_all(echo_gateway, bodies, key)

    ok = [r for r in replies if "result" in r]
    refused = [r for r in replies if "error" in r]
    assert len(ok) == credits
    assert all(r["result"]["structuredContent"]["result"] == 2 * r["id"] for r in ok)
    assert len(refused) == callers - credits
    assert {r["error"]["data"]["reason"] for r in refused} == {"insufficient_credits"}
    balance = echo_gateway.client.get("/balance", headers={"X-API-Key": key}).json()
    assert balance["credits"] == 0
    assert balance["totalSpent"] == credits
    assert balance["totalCalls"] == credits
    events = usage_events(echo_gateway, "race")
    assert sum(e["allowed"] for e in events) == credits
    assert sum(e["creditsCharged"] for e in events) == credits
    assert len(events) == callers
