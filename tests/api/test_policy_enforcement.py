"""Key policy enforced at the gate, through the real app (in-process): IP allowlists behind trusted
proxies (and not without them), countries, globalQuota, groups, teams, and tools/list filtered per key.
A quota surviving a real process restart is tests/e2e/test_policy_enforcement.py's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.inprocess import running_inprocess_gateway as running_gateway
from tests.support import ECHO_COMMAND, Gateway, text_of, write_config


def reason(reply: dict[str, Any]) -> str | None:
    return reply["error"]["data"]["reason"] if "error" in reply else None


def call(gw: Gateway, key: str, tool: str = "echo", headers: dict[str, str] | None = None) -> dict[str, Any]:
    args = {"text": "hi"} if tool == "echo" else {"a": 1, "b": 2}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}}
    return dict(gw.client.post("/mcp", json=body, headers={"X-API-Key": key, **(headers or {})}).json())


def tool_names(gw: Gateway, key: str | None) -> list[str]:
    reply = gw.rpc("tools/list", {}, key=key).json()
    return [t["name"] for t in reply["result"]["tools"]]


def test_ip_allowlist_believes_forwarded_for_only_from_a_trusted_proxy() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--trusted-proxies", "127.0.0.1") as gw:
        key = gw.create_key(10, ipAllowlist=["198.51.100.0/24", "2001:db8::/32"])
        assert text_of(call(gw, key, headers={"X-Forwarded-For": "198.51.100.7"})) == "hi"
        assert text_of(call(gw, key, headers={"X-Forwarded-For": "2001:db8::5"})) == "hi"
        # a client cannot prepend its way in: the hop our trusted proxy appended is the client
        spoofed = call(gw, key, headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
        assert reason(spoofed) == "ip_not_allowed"
        assert reason(call(gw, key)) == "ip_not_allowed"  # no header: the peer (127.0.0.1) is the client
        assert gw.balance(key) == 8


def test_without_trusted_proxies_forwarded_for_is_ignored() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gw:
        remote = gw.create_key(10, ipAllowlist=["198.51.100.0/24"])
        assert reason(call(gw, remote, headers={"X-Forwarded-For": "198.51.100.7"})) == "ip_not_allowed"
        local = gw.create_key(10, ipAllowlist=["127.0.0.0/8"])
        assert text_of(call(gw, local, headers={"X-Forwarded-For": "203.0.113.9"})) == "hi"
        mapped = gw.create_key(10, ipAllowlist=["::ffff:127.0.0.1"])  # IPv4-mapped entry means 127.0.0.1
        assert text_of(call(gw, mapped)) == "hi"


def test_country_rules_read_the_header_from_a_trusted_proxy_and_fail_closed() -> None:
    with running_gateway(
        "--server", ECHO_COMMAND, "--rate-limit", "0", "--trusted-proxies", "127.0.0.1", "--country-header", "X-Country"
    ) as gw:
        key = gw.create_key(10)
        resp = gw.client.post("/keys/geo", headers=gw.admin(), json={"key": key, "allowedCountries": ["de", "FR"]})
        assert resp.status_code == 200, resp.text
        assert text_of(call(gw, key, headers={"X-Country": "DE"})) == "hi"
        assert reason(call(gw, key, headers={"X-Country": "US"})) == "country_not_allowed"
        assert reason(call(gw, key)) == "country_not_allowed"  # unknown country: refused
        assert reason(call(gw, key, headers={"CF-IPCountry": "DE"})) == "country_not_allowed"  # not the header
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--country-header", "X-Country") as gw:
        key = gw.create_key(10)
        gw.client.post("/keys/geo", headers=gw.admin(), json={"key": key, "allowedCountries": ["DE"]})
        # no trusted proxy: anyone could send the header, so it is not believed
        assert reason(call(gw, key, headers={"X-Country": "DE"})) == "country_not_allowed"


def test_global_quota_from_the_config_file_applies_to_keys_without_their_own(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "serverCommand": ECHO_COMMAND.split()[0],
            "serverArgs": ECHO_COMMAND.split()[1:],
            "globalRateLimitPerMin": 0,
            "globalQuota": {"dailyCreditLimit": 3},
        },
    )
    with running_gateway("--config", config) as gw:
        plain = gw.create_key(100)
        own = gw.create_key(100, quota={"dailyCallLimit": 10})
        results = [reason(call(gw, plain)) for _ in range(4)]
        assert results == [None, None, None, "quota_exceeded"]
        assert [reason(call(gw, own)) for _ in range(4)] == [None] * 4  # its own quota wins


def test_group_policy_applies_to_its_members_and_tools_list_hides_denied_tools() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gw:
        key = gw.create_key(100)
        assert {"echo", "add"} <= set(tool_names(gw, key))
        resp = gw.client.post(
            "/groups",
            headers=gw.admin(),
            json={"name": "metered", "deniedTools": ["add"], "toolPricing": {"echo": {"creditsPerCall": 7}}},
        )
        assert resp.status_code == 201, resp.text
        group_id = resp.json()["id"]
        assert (
            gw.client.post("/groups/assign", headers=gw.admin(), json={"groupId": group_id, "key": key}).status_code
            == 200
        )
        assert reason(call(gw, key, "add")) == "tool_not_allowed"
        assert text_of(call(gw, key)) == "hi"
        assert gw.balance(key) == 93  # the group's price
        listed = gw.rpc("tools/list", {}, key=key).json()["result"]["tools"]
        assert "add" not in [t["name"] for t in listed]
        assert next(t for t in listed if t["name"] == "echo")["_pricing"]["creditsPerCall"] == 7
        assert "add" in tool_names(gw, None)  # without a key: the full list
        gw.client.post("/groups/remove", headers=gw.admin(), json={"key": key})
        assert text_of(call(gw, key, "add")) == "3"


def test_an_acl_key_never_sees_denied_tools_in_tools_list() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gw:
        only_echo = gw.create_key(5, allowedTools=["echo"])
        no_add = gw.create_key(5, deniedTools=["add"])
        assert tool_names(gw, only_echo) == ["echo"]
        assert "add" not in tool_names(gw, no_add) and "echo" in tool_names(gw, no_add)


def test_a_team_budget_is_shared_by_its_members() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gw:
        first, second = gw.create_key(100), gw.create_key(100)
        resp = gw.client.post("/teams", headers=gw.admin(), json={"name": "squad", "budget": 3})
        assert resp.status_code in (200, 201), resp.text
        team = resp.json()
        team_id = team.get("id") or team.get("teamId") or team["team"]["id"]
        for key in (first, second):
            assigned = gw.client.post("/teams/assign", headers=gw.admin(), json={"teamId": team_id, "key": key})
            assert assigned.status_code == 200, assigned.text
        outcomes = [reason(call(gw, k)) for k in (first, second, first, second)]
        assert outcomes == [None, None, None, "team_budget_exceeded"]
        usage = gw.client.get("/teams/usage", params={"teamId": team_id}, headers=gw.admin())
        assert usage.status_code == 200 and json.dumps(3) in usage.text


def test_balance_shows_the_policy_the_gate_applies() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gw:
        key = gw.create_key(100, deniedTools=["fail"], quota={"dailyCallLimit": 5})
        group = gw.client.post(
            "/groups", headers=gw.admin(), json={"name": "capped", "deniedTools": ["add"], "maxSpendingLimit": 10}
        ).json()
        gw.client.post("/groups/assign", headers=gw.admin(), json={"groupId": group["id"], "key": key})
        assert text_of(call(gw, key)) == "hi"
        body = gw.client.get("/balance", headers={"X-API-Key": key}).json()
        assert body["deniedTools"] == ["fail", "add"]
        assert body["spendingLimit"] == 10 and body["remainingBudget"] == 9
        assert body["quota"]["dailyCallLimit"] == 5
        assert body["quotaUsage"]["daily"]["calls"] == {"used": 1, "limit": 5, "remaining": 4}
