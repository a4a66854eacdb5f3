"""The OAuth endpoints one by one: metadata, registration, the client list, the consent page, revocation."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paygate.admin.backup import checksum
from tests.api.oauth.flow import REDIRECT, Flow, form_fields, pkce, query_of
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config


@pytest.fixture
def flow(gw: InProcessGateway) -> Iterator[Flow]:
    with httpx.Client(follow_redirects=False, timeout=30.0) as client:
        yield Flow(gw.url, client)


def clients(gw: InProcessGateway) -> list[dict[str, Any]]:
    r = gw.client.get(f"{gw.url}/oauth/clients", headers=gw.admin())
    assert r.status_code == 200
    return list(r.json()["clients"])


def audit_types(gw: InProcessGateway, type_: str) -> list[dict[str, Any]]:
    r = gw.client.get(f"{gw.url}/audit", params={"types": type_}, headers=gw.admin())
    return list(r.json()["events"])


def test_authorization_server_metadata(flow: Flow) -> None:
    meta = flow.client.get(f"{flow.url}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == flow.url
    assert meta["authorization_endpoint"] == f"{flow.url}/oauth/authorize"
    assert meta["token_endpoint"] == f"{flow.url}/oauth/token"
    assert meta["registration_endpoint"] == f"{flow.url}/oauth/register"
    assert meta["revocation_endpoint"] == f"{flow.url}/oauth/revoke"
    assert meta["code_challenge_methods_supported"] == ["S256"]  # never plain
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["scopes_supported"] == ["tools:*", "tools:read", "tools:write"]


def test_protected_resource_metadata(flow: Flow) -> None:
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        prm = flow.client.get(flow.url + path).json()
        assert prm["resource"] == f"{flow.url}/mcp"
        assert prm["authorization_servers"] == [flow.url]
        assert prm["bearer_methods_supported"] == ["header"]
        assert "tools:*" in prm["scopes_supported"]


def test_the_issuer_and_resource_come_from_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"oauth": {"issuer": "https://gw.example.com/", "scopes": ["tools:*"]}})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--config", config) as gw:
        meta = gw.client.get(f"{gw.url}/.well-known/oauth-authorization-server").json()
        prm = gw.client.get(f"{gw.url}/.well-known/oauth-protected-resource").json()
        r = gw.client.post(f"{gw.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert meta["issuer"] == "https://gw.example.com"
    assert meta["token_endpoint"] == "https://gw.example.com/oauth/token"
    assert prm["resource"] == "https://gw.example.com/mcp"
    assert prm["scopes_supported"] == ["tools:*"]
    assert r.headers["www-authenticate"] == (
        'Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource"'
    )


def test_without_oauth_config_there_is_no_oauth_and_mcp_is_unchanged() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND) as gw:
        assert gw.client.get(f"{gw.url}/.well-known/oauth-authorization-server").status_code == 404
        assert gw.client.post(f"{gw.url}/oauth/register", json={"redirect_uris": [REDIRECT]}).status_code == 404
        r = gw.client.post(f"{gw.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 200 and "www-authenticate" not in r.headers


def test_register_a_public_client(gw: InProcessGateway, flow: Flow) -> None:
    reg = flow.register(client_name="Agent A", logo_uri="https://x.example/logo.png")  # unknown metadata: ignored
    assert reg["client_id"].startswith("pgc_")
    assert "client_secret" not in reg
    assert reg["redirect_uris"] == [REDIRECT] and reg["token_endpoint_auth_method"] == "none"
    listed = next(c for c in clients(gw) if c["clientId"] == reg["client_id"])
    assert listed["clientName"] == "Agent A" and listed["confidential"] is False and listed["boundKey"] is None
    assert any(e["metadata"]["clientId"] == reg["client_id"] for e in audit_types(gw, "oauth.client_registered"))


def test_register_a_confidential_client_bound_to_a_key(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(10)
    r = flow.client.post(
        f"{flow.url}/oauth/register",
        json={"client_name": "Bound", "redirect_uris": [REDIRECT], "api_key": key},
    )
    assert r.status_code == 201
    reg = r.json()
    assert reg["token_endpoint_auth_method"] == "client_secret_basic"  # RFC 7591's default
    assert reg["client_secret"].startswith("pgcs_") and reg["client_secret_expires_at"] == 0
    listed = next(c for c in clients(gw) if c["clientId"] == reg["client_id"])
    assert listed["confidential"] is True and listed["boundKey"].endswith("…")
    text = gw.client.get(f"{gw.url}/oauth/clients", headers=gw.admin()).text
    assert reg["client_secret"] not in text and key not in text


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),  # http off loopback
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://user:pw@app.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"redirect_uris": [f"https://a.example/{i}" for i in range(11)]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://a.example/" + "x" * 2000]}, "invalid_redirect_uri"),
        ({"redirect_uris": [REDIRECT], "api_key": "pg_not_a_key_at_all"}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "response_types": ["token"]}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "scope": "admin"}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "client_name": "x" * 201}, "invalid_client_metadata"),
        ({"redirect_uris": "https://a.example/cb"}, "invalid_redirect_uri"),
    ],
)
def test_bad_registrations_are_refused_and_store_nothing(
    gw: InProcessGateway, flow: Flow, body: dict[str, Any], error: str
) -> None:
    before = clients(gw)
    r = flow.client.post(f"{flow.url}/oauth/register", json=body)
    assert r.status_code == 400 and r.json()["error"] == error, r.text
    assert clients(gw) == before


def test_registration_counts_are_capped(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"oauth": {"maxClients": 2}})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--config", config) as gw:
        body = {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}
        codes = [gw.client.post(f"{gw.url}/oauth/register", json=body).status_code for _ in range(3)]
        assert codes == [201, 201, 400]
        assert len(clients(gw)) == 2


def test_the_client_list_is_admin_only(gw: InProcessGateway) -> None:
    assert gw.client.get(f"{gw.url}/oauth/clients").status_code == 401
    assert gw.client.get(f"{gw.url}/oauth/clients", headers={"X-Admin-Key": "nope-nope-nope-nope"}).status_code == 401


def test_the_consent_page_is_a_strict_self_contained_form(flow: Flow) -> None:
    reg = flow.register(client_name="<script>alert(1)</script>")
    _, challenge = pkce()
    page = flow.client.get(f"{flow.url}/oauth/authorize", params=flow.authorize_params(reg["client_id"], challenge))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text  # the client's name is escaped
    assert "http" not in page.text.replace(REDIRECT, "")  # no external asset
    fields = form_fields(page.text)
    assert len(fields["csrf_token"]) == 64 and fields["client_id"] == reg["client_id"]
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/oauth/authorize" in cookie


def test_deny_redirects_with_access_denied(flow: Flow) -> None:
    reg = flow.register()
    _, challenge = pkce()
    params = flow.authorize_params(reg["client_id"], challenge)
    r = flow.consent(params, None, decision="deny")
    assert r.status_code == 303
    got = query_of(r.headers["location"])
    assert got == {
        "error": "access_denied",
        "error_description": got["error_description"],
        "state": params["state"],
        "iss": flow.url,
    }


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge": ""}, "invalid_request"),  # no PKCE
        ({"code_challenge_method": "plain"}, "invalid_request"),  # plain is never accepted
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"scope": "tools:* admin"}, "invalid_scope"),
        ({"resource": "https://other.example/mcp"}, "invalid_target"),
    ],
)
def test_bad_requests_go_back_to_a_valid_redirect_uri(flow: Flow, change: dict[str, str], error: str) -> None:
    reg = flow.register()
    _, challenge = pkce()
    params = flow.authorize_params(reg["client_id"], challenge) | change
    r = flow.client.get(f"{flow.url}/oauth/authorize", params=params)
    assert r.status_code == 302
    assert r.headers["location"].startswith(REDIRECT + "?")
    got = query_of(r.headers["location"])
    assert got["error"] == error and got["state"] == params["state"] and got["iss"] == flow.url


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "pgc_unknown"},
        {"redirect_uri": "http://127.0.0.1:9/callback/other"},  # not exactly the registered one
        {"redirect_uri": "http://127.0.0.1:9/callbac"},
        {"redirect_uri": "https://evil.example/cb"},
    ],
)
def test_an_untrusted_redirect_uri_is_never_redirected_to(flow: Flow, change: dict[str, str]) -> None:
    reg = flow.register()
    _, challenge = pkce()
    params = flow.authorize_params(reg["client_id"], challenge) | change
    for r in (
        flow.client.get(f"{flow.url}/oauth/authorize", params=params),
        flow.client.post(f"{flow.url}/oauth/authorize", data=params | {"decision": "approve"}),
    ):
        assert r.status_code == 400 and "location" not in r.headers
        assert "Nothing was authorized" in r.text


def test_a_form_without_the_pages_cookie_or_token_is_refused(gw: InProcessGateway, flow: Flow) -> None:
    """CSRF: a form posted from another site arrives without the SameSite cookie, or with a forged token."""
    key = gw.create_key(10)
    reg = flow.register()
    _, challenge = pkce()
    params = flow.authorize_params(reg["client_id"], challenge)
    page = flow.client.get(f"{flow.url}/oauth/authorize", params=params)
    fields = form_fields(page.text) | {"decision": "approve", "api_key": key}
    with httpx.Client(timeout=30.0) as other_site:  # the right token, but no cookie
        r = other_site.post(f"{flow.url}/oauth/authorize", data=fields)
    assert r.status_code == 400 and "location" not in r.headers and "expired" in r.text
    r = flow.client.post(f"{flow.url}/oauth/authorize", data=fields | {"csrf_token": "0" * 64})
    assert r.status_code == 400 and "location" not in r.headers
    r = flow.client.post(f"{flow.url}/oauth/authorize", data=fields | {"scope": "tools:echo"})  # other params
    assert r.status_code == 400 and "location" not in r.headers


def test_the_key_holder_must_paste_an_active_key(gw: InProcessGateway, flow: Flow) -> None:
    reg = flow.register()
    _, challenge = pkce()
    params = flow.authorize_params(reg["client_id"], challenge)
    for pasted, says in ((None, "Paste the API key"), ("pg_wrong_key_value", "not an active API key")):
        r = flow.consent(params, pasted)
        assert r.status_code == 400 and says in r.text and "location" not in r.headers
    revoked = gw.create_key(10)
    gw.client.post(f"{gw.url}/keys/revoke", json={"key": revoked}, headers=gw.admin())
    r = flow.consent(params, revoked)
    assert r.status_code == 400 and "not an active API key" in r.text


def test_a_bound_client_bills_its_key(gw: InProcessGateway, flow: Flow) -> None:
    key, other = gw.create_key(10), gw.create_key(10)
    public = flow.register(api_key=key)  # public: anyone could redeem its codes, so the key is still asked
    _, challenge = pkce()
    params = flow.authorize_params(public["client_id"], challenge)
    assert flow.consent(params, None).status_code == 400
    r = flow.consent(params, other)
    assert r.status_code == 400 and "bound to another API key" in r.text
    assert flow.consent(params, key).status_code == 303
    confidential = flow.register(api_key=key, token_endpoint_auth_method="client_secret_post")
    params = flow.authorize_params(confidential["client_id"], challenge)
    page = flow.client.get(f"{flow.url}/oauth/authorize", params=params)
    assert 'name="api_key"' not in page.text  # bound and confidential: no key to paste
    assert flow.consent(params, None).status_code == 303


def test_revoking_an_unknown_token_is_200_and_changes_nothing(gw: InProcessGateway, flow: Flow) -> None:
    before = audit_types(gw, "oauth.token_revoked")
    for token in ("pg_at_" + "0" * 64, "pg_rt_nothing", "garbage"):
        r = flow.client.post(f"{flow.url}/oauth/revoke", data={"token": token})
        assert r.status_code == 200
    assert flow.client.post(f"{flow.url}/oauth/revoke", data={}).json()["error"] == "invalid_request"
    assert audit_types(gw, "oauth.token_revoked") == before


def test_a_backup_with_oauth_documents_restores(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(10)
    flow.tokens(flow.register()["client_id"], key)
    snapshot = gw.client.get(f"{gw.url}/admin/backup", headers=gw.admin()).json()
    docs = snapshot["data"]["documents"]
    assert {"oauth_client", "oauth_code", "oauth_token"} <= set(docs)
    assert key not in str(docs)
    r = gw.client.post(f"{gw.url}/admin/restore", json={"backup": snapshot, "mode": "overwrite"}, headers=gw.admin())
    assert r.status_code == 200, r.text
    tampered = copy.deepcopy(snapshot)
    next(iter(tampered["data"]["documents"]["oauth_client"].values()))["redirectUris"] = ["http://evil.example/cb"]
    tampered["checksum"] = checksum(tampered["data"])
    r = gw.client.post(f"{gw.url}/admin/restore", json={"backup": tampered, "mode": "overwrite"}, headers=gw.admin())
    assert r.status_code == 400 and "redirectUris" in r.text
