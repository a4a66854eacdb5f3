"""Scoped tokens through the real app: POST /tokens, POST /tokens/revoke, GET /tokens/revoked, and the
token on /mcp (X-API-Key or Bearer): it bills its key, calls only its tools, lists only them, and is refused
once revoked or forged, with nothing charged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.policy_support import denial
from tests.inprocess import InProcessGateway
from tests.support import masked


def issue(gw: InProcessGateway, raw: str, **extra: Any) -> dict[str, Any]:
    resp = gw.client.post("/tokens", json={"key": raw, **extra}, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def bearer_call(gw: InProcessGateway, token: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    return dict(gw.client.post("/mcp", json=body, headers={"Authorization": f"Bearer {token}"}).json())


def test_a_token_bills_its_key_and_calls_only_its_tools(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    made = issue(gw, raw, ttl=300, allowedTools=["echo", "add"], label="agent-42")
    token = made["token"]
    assert token.startswith("pgt_") and raw not in token and made["ttl"] == 300
    assert made["allowedTools"] == ["add", "echo"] and made["label"] == "agent-42" and made["parentKey"] == "test"
    assert "result" in gw.call_tool("echo", {"text": "hi"}, token)  # as X-API-Key
    assert "result" in bearer_call(gw, token, "add", {"a": 1, "b": 2})  # as a Bearer token
    assert gw.balance(raw) == 8
    assert denial(gw.call_tool("big_output", {"kilobytes": 1}, token)) == "tool_not_allowed"
    assert gw.balance(raw) == 8  # refused before any charge
    listed = gw.rpc("tools/list", {}, key=token).json()["result"]["tools"]
    assert sorted(t["name"] for t in listed) == ["add", "echo"]
    assert "result" in gw.call_tool("big_output", {"kilobytes": 1}, raw)  # the key itself is not narrowed


def test_a_token_is_narrowed_within_its_keys_own_acl(gw: InProcessGateway) -> None:
    raw = gw.create_key(10, deniedTools=["add"])
    token = issue(gw, raw, allowedTools=["echo", "add"])["token"]
    assert denial(gw.call_tool("add", {"a": 1, "b": 2}, token)) == "tool_not_allowed"
    wide = issue(gw, raw, allowedTools=[])["token"]  # an empty list narrows nothing
    assert "result" in gw.call_tool("big_output", {"kilobytes": 1}, wide)
    assert denial(gw.call_tool("add", {"a": 1, "b": 2}, wide)) == "tool_not_allowed"
    assert gw.balance(raw) == 9


def test_a_batch_with_a_tool_outside_the_token_is_refused_whole(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    token = issue(gw, raw, allowedTools=["echo"])["token"]
    calls = [{"name": "echo", "arguments": {"text": "a"}}, {"name": "add", "arguments": {"a": 1, "b": 1}}]
    answer = gw.rpc("tools/call_batch", {"calls": calls}, key=token).json()
    assert answer["error"]["data"]["reason"] == "tool_not_allowed" and answer["error"]["data"]["failedIndex"] == 1
    assert gw.balance(raw) == 10


def test_a_revoked_token_is_refused_everywhere_and_listed_by_fingerprint(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    made = issue(gw, raw, ttl=600)
    token = made["token"]
    assert "result" in gw.call_tool("echo", {"text": "hi"}, token)
    resp = gw.client.post("/tokens/revoke", json={"token": token, "reason": "session ended"}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    revoked = resp.json()
    assert revoked["message"] == "Token revoked" and revoked["fingerprint"] == made["fingerprint"]
    assert revoked["expiresAt"] == made["expiresAt"] and revoked["reason"] == "session ended"
    assert denial(gw.call_tool("echo", {"text": "hi"}, token)) == "token_revoked"
    assert denial(bearer_call(gw, token, "echo", {"text": "hi"})) == "token_revoked"
    assert gw.balance(raw) == 9
    again = gw.client.post("/tokens/revoke", json={"token": token}, headers=gw.admin())
    assert again.status_code == 200 and again.json()["revokedAt"] == revoked["revokedAt"]
    listed = gw.client.get("/tokens/revoked", headers=gw.admin()).json()
    mine = [e for e in listed["entries"] if e["fingerprint"] == made["fingerprint"]]
    assert mine == [{k: revoked[k] for k in ("fingerprint", "expiresAt", "revokedAt", "reason")}]
    assert listed["count"] == len(listed["entries"]) and token not in str(listed)
    [event] = [e for e in gw.events("token.revoked") if e["data"]["fingerprint"] == made["fingerprint"]]
    assert token not in str(event)
    [created] = [e for e in gw.events("token.created") if e["data"]["fingerprint"] == made["fingerprint"]]
    assert created["data"]["keyMasked"] == masked(raw) and token not in str(created) and raw not in str(created)


def test_forged_tokens_are_refused_and_charge_nothing(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    token = issue(gw, raw)["token"]
    payload, signature = token[4:].split(".")
    for forged in (f"pgt_{payload}.{'A' * len(signature)}", f"pgt_{payload[:-4]}AAAA.{signature}", "pgt_x.y"):
        assert denial(gw.call_tool("echo", {"text": "hi"}, forged)) == "invalid_token"
    resp = gw.client.post("/tokens/revoke", json={"token": "pgt_x.y"}, headers=gw.admin())
    assert resp.status_code == 400  # only tokens this gateway signed can be revoked
    assert gw.balance(raw) == 10


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"key": "K", "ttl": 0},
        {"key": "K", "ttl": 86_401},
        {"key": "K", "ttl": "60"},
        {"key": "K", "allowedTools": "echo"},
        {"key": "K", "allowedTools": [""]},
        {"key": "K", "label": "x" * 201},
        {"key": "K", "extra": 1},
    ],
)
def test_bad_token_requests_are_400_and_issue_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    raw = gw.create_key(1)
    before = len(gw.events("token.created"))
    payload = {k: (raw if v == "K" else v) for k, v in body.items()}
    assert gw.client.post("/tokens", json=payload, headers=gw.admin()).status_code == 400
    assert len(gw.events("token.created")) == before


def test_unknown_and_revoked_keys_and_non_admins_get_no_token(gw: InProcessGateway) -> None:
    assert gw.client.post("/tokens", json={"key": "pg_nope"}, headers=gw.admin()).status_code == 404
    raw = gw.create_key(1)
    assert gw.client.post("/keys/revoke", json={"key": raw}, headers=gw.admin()).status_code == 200
    assert gw.client.post("/tokens", json={"key": raw}, headers=gw.admin()).status_code == 409
    assert gw.client.post("/tokens", json={"key": raw}, headers={"X-Admin-Key": raw}).status_code == 401
    assert gw.client.post("/tokens/revoke", json={"token": "pgt_x.y"}).status_code == 401
    assert gw.client.get("/tokens/revoked").status_code == 401
