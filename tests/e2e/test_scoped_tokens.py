"""Scoped tokens through the real CLI: the official `mcp` SDK client calls with a `pgt_` Bearer token (both
wire eras), the key pays; the token and its revocation outlive a restart; a Redis fleet started at once
shares one signing secret, and a revocation on one instance is obeyed by the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from tests.e2e.test_sdk_client import sdk_client
from tests.redis_fleet import ADMIN_KEY, start_fleet, stop_all
from tests.support import ECHO_COMMAND, Gateway, running_gateway, wait_until

pytestmark = pytest.mark.e2e


def issue(gw: Gateway, raw: str, **extra: Any) -> str:
    resp = gw.client.post("/tokens", json={"key": raw, **extra}, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    return str(resp.json()["token"])


def revoke(gw: Gateway, token: str) -> None:
    resp = gw.client.post("/tokens/revoke", json={"token": token}, headers=gw.admin())
    assert resp.status_code == 200, resp.text


def reason(gw: Gateway, token: str) -> str | None:
    reply = gw.call_tool("echo", {"text": "hi"}, token)
    return None if "result" in reply else str(reply["error"]["data"]["reason"])


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_sdk_calls_with_a_token_and_the_key_pays(echo_gateway: Gateway, mode: str) -> None:
    raw = echo_gateway.create_key(10)
    token = issue(echo_gateway, raw, allowedTools=["add"], ttl=120)
    async with sdk_client(echo_gateway, {"Authorization": f"Bearer {token}"}, mode) as client:
        assert [t.name for t in (await client.list_tools()).tools] == ["add"]
        result = await client.call_tool("add", {"a": 2, "b": 3})
        assert not result.is_error and result.structured_content == {"result": 5}
        with pytest.raises(MCPError) as denied:
            await client.call_tool("echo", {"text": "not mine"})
        assert isinstance(denied.value.error.data, dict) and denied.value.error.data["reason"] == "tool_not_allowed"
    assert echo_gateway.balance(raw) == 9


def test_tokens_and_revocations_outlive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_gateway(*args, state_file=state, admin_key=ADMIN_KEY) as gw:
        raw = gw.create_key(10)
        kept, revoked = issue(gw, raw), issue(gw, raw)
        revoke(gw, revoked)
    with running_gateway(*args, state_file=state, admin_key=ADMIN_KEY) as again:
        assert reason(again, kept) is None  # the signing secret is the store's: the same after a restart
        assert reason(again, revoked) == "token_revoked"
        assert again.balance(raw) == 9


def test_a_fleet_shares_the_secret_and_obeys_a_revocation_made_elsewhere(redis_url: str) -> None:
    a, b = fleet = start_fleet(2, f"{redis_url}", "--rate-limit", "0", "--redis-prefix", "tokens_e2e")
    try:
        raw = a.create_key(10)
        wait_until(lambda: b.client.get("/balance", headers={"X-API-Key": raw}).status_code == 200, 20, "the key on b")
        token = issue(a, raw)
        assert reason(b, token) is None  # signed on a, accepted on b: both took the one secret
        revoke(a, token)
        wait_until(lambda: reason(b, token) == "token_revoked", 20, "b to refuse the revoked token")
        assert reason(a, token) == "token_revoked"
    finally:
        stop_all(fleet)
