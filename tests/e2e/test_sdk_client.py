"""The official `mcp` Python SDK client (v2) talking Streamable HTTP to the real gateway.

The v2 client probes the 2026-07-28 era (`server/discover`) first; the gateway speaks it, so the
client adopts it: sessionless requests, each with its own envelope. `mode="legacy"` makes the same
client use the `initialize` handshake and a session. Both eras are driven here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import TextContent

from tests.recording_backend import recording_backend
from tests.support import Gateway, running_gateway

pytestmark = pytest.mark.e2e
ERAS = ["auto", "legacy"]  # auto: the client negotiates, and gets 2026-07-28


@asynccontextmanager
async def sdk_client(gw: Gateway, headers: dict[str, str] | None = None, mode: str = "auto") -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=30.0) as http,
        Client(streamable_http_client(f"{gw.url}/mcp", http_client=http), mode=mode) as client,
    ):  # type: ignore[arg-type]
        yield client


def active_sessions(gw: Gateway) -> int:
    return int(gw.client.get("/status", headers=gw.admin()).json()["activeSessions"])


@pytest.mark.parametrize("mode", ERAS)
async def test_negotiation_listing_and_a_paid_call(echo_gateway: Gateway, mode: str) -> None:
    key = echo_gateway.create_key(5)
    async with sdk_client(echo_gateway, {"X-API-Key": key}, mode) as client:
        if mode == "auto":
            assert client.protocol_version == "2026-07-28" and client.session.initialize_result is None
            discovered = client.session.discover_result
            assert discovered is not None and "2025-03-26" in discovered.supported_versions
            assert active_sessions(echo_gateway) == 0  # the 2026-07-28 wire has no sessions
        else:
            assert client.session.initialize_result is not None and client.protocol_version == "2025-11-25"
            assert active_sessions(echo_gateway) == 1
        assert client.server_info is not None and client.server_info.name == "paygate-test-echo"

        listed = await client.list_tools()
        assert {"echo", "add", "fail"} <= {t.name for t in listed.tools}

        result = await client.call_tool("add", {"a": 2, "b": 3})
        assert not result.is_error
        assert result.structured_content == {"result": 5}
        echoed = await client.call_tool("echo", {"text": "from the SDK"})
        assert isinstance(echoed.content[0], TextContent) and echoed.content[0].text == "from the SDK"
        assert echo_gateway.balance(key) == 3
    assert active_sessions(echo_gateway) == 0  # the SDK DELETEs its session on close


@pytest.mark.parametrize("mode", ERAS)
async def test_a_denial_surfaces_as_an_mcp_error(echo_gateway: Gateway, mode: str) -> None:
    key = echo_gateway.create_key(1)
    async with sdk_client(echo_gateway, {"X-API-Key": key}, mode) as client:
        assert (await client.call_tool("add", {"a": 1, "b": 1})).structured_content == {"result": 2}
        with pytest.raises(MCPError) as denied:
            await client.call_tool("add", {"a": 1, "b": 1})
        assert denied.value.error.code == -32402
        assert isinstance(denied.value.error.data, dict)
        assert denied.value.error.data["reason"] == "insufficient_credits"
        assert denied.value.error.data["creditsRemaining"] == 0
        # the session survives a denial
        assert {t.name for t in (await client.list_tools()).tools} >= {"add"}
    assert echo_gateway.balance(key) == 0


@pytest.mark.parametrize("mode", ERAS)
async def test_without_a_key_discovery_works_and_calls_are_refused(echo_gateway: Gateway, mode: str) -> None:
    async with sdk_client(echo_gateway, mode=mode) as client:
        assert "add" in {t.name for t in (await client.list_tools()).tools}
        with pytest.raises(MCPError) as denied:
            await client.call_tool("add", {"a": 1, "b": 1})
        assert denied.value.error.code == -32402
        assert isinstance(denied.value.error.data, dict)
        assert denied.value.error.data["reason"] == "missing_api_key"


async def test_a_modern_client_is_served_by_the_gateway_in_front_of_any_backend() -> None:
    """The gateway answers `server/discover` itself and keeps its handshake-era session upstream:
    the modern client's envelope never reaches the backend."""
    with recording_backend() as backend, running_gateway("--remote-url", backend.url, "--rate-limit", "0") as gw:
        key = gw.create_key(2)
        async with sdk_client(gw, {"Authorization": f"Bearer {key}"}) as client:
            assert client.protocol_version == "2026-07-28"
            assert {t.name for t in (await client.list_tools()).tools} == {"headers", "shout"}
            shouted = await client.call_tool("shout", {"text": "through the gate"})
            assert isinstance(shouted.content[0], TextContent)
            assert shouted.content[0].text == "THROUGH THE GATE"
        assert gw.balance(key) == 1
        assert "server/discover" not in backend.methods()
        call = next(r for r in backend.requests if isinstance(r.body, dict) and r.body.get("method") == "tools/call")
        assert call.body["params"] == {"name": "shout", "arguments": {"text": "through the gate"}}
        assert call.headers.get("mcp-protocol-version") != "2026-07-28" and "mcp-method" not in call.headers
