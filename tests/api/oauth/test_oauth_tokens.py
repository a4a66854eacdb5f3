"""The token endpoint and the tokens on /mcp, with every attack of issue 16 refused and nothing changed."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.oauth.flow import REDIRECT, Flow
from tests.inprocess import InProcessGateway

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@pytest.fixture
def flow(gw: InProcessGateway) -> Iterator[Flow]:
    with httpx.Client(follow_redirects=False, timeout=30.0) as client:
        yield Flow(gw.url, client)


def mcp(gw: InProcessGateway, token: str | None, host: str | None = None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if host:
        headers["Host"] = host
    return gw.client.post(f"{gw.url}/mcp", json=PING, headers=headers)


def assert_accepted(gw: InProcessGateway, token: str) -> None:
    r = mcp(gw, token)
    assert r.status_code == 200 and r.json()["result"] == {}, r.text


def assert_refused(gw: InProcessGateway, token: str, why: str) -> None:
    r = mcp(gw, token)
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"') and why in challenge
    assert f'resource_metadata="{gw.url}/.well-known/oauth-protected-resource"' in challenge


def refused(r: httpx.Response, error: str = "invalid_grant") -> dict[str, Any]:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error and r.headers["cache-control"] == "no-store"
    return dict(r.json())


def test_the_code_flow_gives_tokens_mcp_accepts(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(10)
    reg = flow.register()
    tokens = flow.tokens(reg["client_id"], key)
    assert tokens["access_token"].startswith("pg_at_") and len(tokens["access_token"]) == 6 + 64
    assert tokens["refresh_token"].startswith("pg_rt_")
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert_accepted(gw, tokens["access_token"])
    issued = gw.client.get(f"{gw.url}/audit", params={"types": "oauth.token_issued"}, headers=gw.admin()).json()
    assert any(e["metadata"]["clientId"] == reg["client_id"] for e in issued["events"])


def test_the_reference_curl_flow_with_json_bodies(gw: InProcessGateway, flow: Flow) -> None:
    """README steps 1-6: JSON bodies, as `curl -d '{...}'` sends them (even labelled as a form)."""
    key = gw.create_key(10)
    r = gw.client.post(
        f"{gw.url}/oauth/register",
        content=f'{{"client_name": "My Agent", "redirect_uris": ["{REDIRECT}"], "api_key": "{key}"}}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    reg = r.json()
    code, verifier = flow.code(reg["client_id"], key)
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": reg["client_id"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_secret": reg["client_secret"],
    }
    tokens = gw.client.post(f"{gw.url}/oauth/token", json=body).json()
    assert_accepted(gw, tokens["access_token"])
    body = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": reg["client_id"],
        "client_secret": reg["client_secret"],
    }
    r = gw.client.post(
        f"{gw.url}/oauth/token",
        content=httpx.Request("POST", "/", json=body).content,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and r.json()["access_token"] != tokens["access_token"]


def test_a_confidential_client_must_authenticate(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(10)
    reg = flow.register(token_endpoint_auth_method="client_secret_basic")
    code, verifier = flow.code(reg["client_id"], key)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    r = flow.token(**form, client_id=reg["client_id"])
    assert (
        r.status_code == 401
        and r.json()["error"] == "invalid_client"
        and "basic" in r.headers["www-authenticate"].lower()
    )
    wrong = base64.b64encode(f"{reg['client_id']}:pgcs_wrong".encode()).decode()
    r = flow.client.post(f"{flow.url}/oauth/token", data=form, headers={"Authorization": f"Basic {wrong}"})
    assert r.status_code == 401
    right = base64.b64encode(f"{reg['client_id']}:{reg['client_secret']}".encode()).decode()
    r = flow.client.post(f"{flow.url}/oauth/token", data=form, headers={"Authorization": f"Basic {right}"})
    assert r.status_code == 200, r.text  # the failed attempts did not burn the code


@pytest.mark.parametrize(
    "change",
    [
        {"code_verifier": "x" * 43},  # wrong verifier
        {"code_verifier": ""},  # missing verifier
        {"code_verifier": None},
        {"redirect_uri": "http://127.0.0.1:9/other"},  # redirect mismatch
        {"resource": "https://other.example/mcp"},  # a token for another resource
        {"client_id": "pgc_someone_else"},
        {"code": "pg_ac_" + "0" * 64},
    ],
)
def test_a_refused_exchange_changes_nothing(gw: InProcessGateway, flow: Flow, change: dict[str, str | None]) -> None:
    key = gw.create_key(10)
    reg = flow.register()
    code, verifier = flow.code(reg["client_id"], key)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": reg["client_id"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    attempt = {k: v for k, v in (form | change).items() if v is not None}
    r = flow.token(**attempt)
    assert r.status_code in (400, 401) and "access_token" not in r.text
    assert r.json()["error"] in ("invalid_grant", "invalid_target", "invalid_client", "invalid_request")
    ok = flow.token(**form)  # the code is still good: the failed attempt changed nothing
    assert ok.status_code == 200, ok.text


def test_code_reuse_is_refused_and_revokes_what_the_code_gave(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(10)
    reg = flow.register()
    code, verifier = flow.code(reg["client_id"], key)
    first = flow.exchange(reg["client_id"], code, verifier).json()
    assert_accepted(gw, first["access_token"])
    refused(flow.exchange(reg["client_id"], code, verifier))
    assert_refused(gw, first["access_token"], "revoked")
    refused(flow.token(grant_type="refresh_token", refresh_token=first["refresh_token"], client_id=reg["client_id"]))


def test_refresh_rotates_and_a_replayed_refresh_token_revokes_the_family(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(10)
    reg = flow.register()
    first = flow.tokens(reg["client_id"], key)
    second = flow.token(
        grant_type="refresh_token", refresh_token=first["refresh_token"], client_id=reg["client_id"]
    ).json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert_accepted(gw, first["access_token"])  # the old access token lives out its time
    assert_accepted(gw, second["access_token"])
    refused(flow.token(grant_type="refresh_token", refresh_token=first["refresh_token"], client_id=reg["client_id"]))
    for token in (first["access_token"], second["access_token"]):
        assert_refused(gw, token, "revoked")
    refused(flow.token(grant_type="refresh_token", refresh_token=second["refresh_token"], client_id=reg["client_id"]))


def test_refresh_may_narrow_scopes_never_widen_them(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(10)
    reg = flow.register()
    code, verifier = flow.code(reg["client_id"], key, scope="tools:echo tools:read")
    tokens = flow.exchange(reg["client_id"], code, verifier).json()
    assert tokens["scope"] == "tools:echo tools:read"
    refused(
        flow.token(
            grant_type="refresh_token",
            refresh_token=tokens["refresh_token"],
            client_id=reg["client_id"],
            scope="tools:*",
        ),
        "invalid_scope",
    )
    r = flow.token(
        grant_type="refresh_token",
        refresh_token=tokens["refresh_token"],
        client_id=reg["client_id"],
        scope="tools:echo",
    )
    assert r.status_code == 200 and r.json()["scope"] == "tools:echo"  # the widening attempt burnt nothing


def test_refresh_for_another_client_or_resource_is_refused(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(10)
    reg, other = flow.register(), flow.register()
    tokens = flow.tokens(reg["client_id"], key)
    refused(flow.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"], client_id=other["client_id"]))
    refused(
        flow.token(
            grant_type="refresh_token",
            refresh_token=tokens["refresh_token"],
            client_id=reg["client_id"],
            resource="https://other.example/mcp",
        ),
        "invalid_target",
    )
    assert (
        flow.token(
            grant_type="refresh_token", refresh_token=tokens["refresh_token"], client_id=reg["client_id"]
        ).status_code
        == 200
    )


def test_revoking_an_access_token(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(10)
    reg = flow.register()
    tokens = flow.tokens(reg["client_id"], key)
    assert flow.client.post(f"{flow.url}/oauth/revoke", data={"token": tokens["access_token"]}).status_code == 200
    assert_refused(gw, tokens["access_token"], "revoked")
    r = flow.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"], client_id=reg["client_id"])
    assert r.status_code == 200  # revoking the access token leaves the refresh token


def test_revoking_a_refresh_token_takes_its_access_tokens(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(10)
    reg, other = flow.register(), flow.register()
    tokens = flow.tokens(reg["client_id"], key)
    r = flow.client.post(
        f"{flow.url}/oauth/revoke", json={"token": tokens["refresh_token"], "client_id": other["client_id"]}
    )
    assert r.status_code == 200
    assert_accepted(gw, tokens["access_token"])  # another client's revocation changed nothing
    r = flow.client.post(
        f"{flow.url}/oauth/revoke", data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    )
    assert r.status_code == 200
    assert_refused(gw, tokens["access_token"], "revoked")
    refused(flow.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"], client_id=reg["client_id"]))


def test_mcp_challenges_requests_without_a_credential(gw: InProcessGateway) -> None:
    r = mcp(gw, None)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == f'Bearer resource_metadata="{gw.url}/.well-known/oauth-protected-resource"'
    get = gw.client.get(f"{gw.url}/mcp", headers={"Accept": "text/event-stream", "Mcp-Session-Id": "x"})
    assert get.status_code == 401


def test_unknown_and_foreign_tokens_are_challenged(gw: InProcessGateway, flow: Flow) -> None:
    assert_refused(gw, "pg_at_" + "0" * 64, "unknown")
    key = gw.create_key(10)
    tokens = flow.tokens(flow.register()["client_id"], key)
    # the same gateway reached by another name is another resource: its tokens are not this one's
    r = mcp(gw, tokens["access_token"], host="other.example")
    assert r.status_code == 401 and "another resource" in r.headers["www-authenticate"]
    assert (
        'resource_metadata="http://other.example/.well-known/oauth-protected-resource"' in r.headers["www-authenticate"]
    )


def test_plain_api_keys_work_as_before(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    assert gw.client.post(f"{gw.url}/mcp", json=PING, headers={"X-API-Key": key}).status_code == 200
    r = gw.client.post(f"{gw.url}/mcp", json=PING, headers={"X-API-Key": "pg_not_a_key"})
    assert r.status_code != 401 or "www-authenticate" not in r.headers  # a bad plain key: the gate's answer


def test_unsupported_grants_and_bodies(flow: Flow) -> None:
    refused(flow.token(grant_type="password", username="a", password="b"), "unsupported_grant_type")
    refused(flow.token(grant_type="client_credentials"), "unsupported_grant_type")
    r = flow.client.post(
        f"{flow.url}/oauth/token",
        content=b"grant_type=a&grant_type=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    refused(r, "invalid_request")  # a repeated parameter
    r = flow.client.post(f"{flow.url}/oauth/token", content=b"{not json", headers={"Content-Type": "application/json"})
    refused(r, "invalid_request")


def call(gw: InProcessGateway, token: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    return dict(gw.client.post(f"{gw.url}/mcp", json=body, headers={"Authorization": f"Bearer {token}"}).json())


def test_a_token_bills_its_key_and_calls_only_the_tools_its_scopes_name(gw: InProcessGateway, flow: Flow) -> None:
    key, bystander = gw.create_key(10), gw.create_key(10)
    reg = flow.register()
    code, verifier = flow.code(reg["client_id"], key, scope="tools:echo")
    token = flow.exchange(reg["client_id"], code, verifier).json()["access_token"]
    assert "result" in call(gw, token, "echo", {"text": "hi"})
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
    denied = gw.client.post(f"{gw.url}/mcp", json=body, headers={"Authorization": f"Bearer {token}"})
    assert denied.status_code == 403 and denied.json()["error"]["data"]["reason"] == "insufficient_scope"
    challenge = denied.headers["www-authenticate"]  # the MCP authorization spec's step-up challenge
    assert challenge.startswith('Bearer error="insufficient_scope", scope="tools:add"')
    assert f'resource_metadata="{gw.url}/.well-known/oauth-protected-resource"' in challenge
    in_batch = [body, {**body, "id": 3}]
    assert (
        gw.client.post(f"{gw.url}/mcp", json=in_batch, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    listed = gw.client.post(
        f"{gw.url}/mcp",
        json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()["result"]["tools"]
    assert [t["name"] for t in listed] == ["echo"]
    wide = flow.tokens(reg["client_id"], key)["access_token"]  # the default scopes: every tool
    assert "result" in call(gw, wide, "add", {"a": 1, "b": 2})
    assert (gw.balance(key), gw.balance(bystander)) == (8, 10)


def test_a_session_is_bound_to_its_grant_not_to_the_code_presented_as_a_key(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(10)
    reg = flow.register()
    code, verifier = flow.code(reg["client_id"], key)
    tokens = flow.exchange(reg["client_id"], code, verifier).json()
    init = {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    opened = gw.rpc("initialize", init, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    session = opened.headers["mcp-session-id"]
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": reg["client_id"]}
    fresh = flow.token(**refresh).json()["access_token"]
    ping = gw.rpc("ping", headers={"Mcp-Session-Id": session, "Authorization": f"Bearer {fresh}"})
    assert ping.status_code == 200  # the grant's session outlives the refresh
    # the spent code, presented as an API key, names no key: it may neither use nor end the session
    assert gw.rpc("ping", headers={"Mcp-Session-Id": session, "X-API-Key": code}).status_code == 404
    assert gw.client.delete(f"{gw.url}/mcp", headers={"Mcp-Session-Id": session, "X-API-Key": code}).status_code == 404
    assert gw.rpc("ping", headers={"Mcp-Session-Id": session, "Authorization": f"Bearer {fresh}"}).status_code == 200
