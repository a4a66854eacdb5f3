"""The official MCP SDK's OAuth client (`OAuthClientProvider`) through the real `paygate-mcp` CLI: the
401 from /mcp, discovery (RFC 9728, RFC 8414), dynamic registration, authorization with PKCE through the
consent page (a headless redirect handler fills and posts the form), the token, calls, a refresh when
the access token runs out, and revocation (after which the SDK signs in again)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from tests.support import ECHO_COMMAND, Gateway, running_gateway, write_config

REDIRECT = "http://127.0.0.1:9/callback"  # never connected to: the handler reads the redirect itself


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class HeadlessBrowser:
    """What a person does in the browser: open the consent page, paste the key, approve; the redirect
    to the client's callback is read instead of followed."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.result: AuthorizationCodeResult | None = None
        self.visits = 0

    async def redirect(self, authorization_url: str) -> None:
        self.visits += 1
        async with httpx.AsyncClient(follow_redirects=False, timeout=10.0) as browser:
            page = await browser.get(authorization_url)
            assert page.status_code == 200, page.text
            fields = {
                unescape(n): unescape(v)
                for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
            }
            action = urlsplit(authorization_url)._replace(query="").geturl()
            answer = await browser.post(action, data=fields | {"api_key": self.api_key, "decision": "approve"})
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        assert location.startswith(REDIRECT + "?")
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        self.result = AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        result, self.result = self.result, None
        return result


@pytest.fixture
def oauth_gateway(tmp_path: Path) -> Iterator[Gateway]:
    config = write_config(tmp_path, {"oauth": {}})
    with running_gateway("--server", ECHO_COMMAND, "--config", config) as gw:
        yield gw


def provider(gw: Gateway, browser: HeadlessBrowser, storage: MemoryStorage) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(client_name="SDK agent", redirect_uris=[AnyUrl(REDIRECT)])
    return OAuthClientProvider(f"{gw.url}/mcp", metadata, storage, browser.redirect, browser.callback)


async def ping_with(gw: Gateway, token: str) -> int:
    async with httpx.AsyncClient(timeout=10.0) as plain:
        r = await plain.post(
            f"{gw.url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {token}"},
        )
    return r.status_code


async def test_the_sdk_signs_in_refreshes_and_signs_in_again_after_revocation(oauth_gateway: Gateway) -> None:
    gw = oauth_gateway
    key = gw.create_key(100)
    browser, storage = HeadlessBrowser(key), MemoryStorage()
    auth = provider(gw, browser, storage)
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30.0) as http,
        Client(streamable_http_client(f"{gw.url}/mcp", http_client=http)) as client,
    ):  # type: ignore[arg-type]
        # the first request got the 401; the SDK discovered, registered, authorized and retried
        assert browser.visits == 1
        assert storage.client is not None and storage.client.client_id.startswith("pgc_")
        assert storage.client.client_secret is not None  # registered as a confidential client (basic)
        assert storage.tokens is not None and storage.tokens.access_token.startswith("pg_at_")
        assert storage.tokens.scope == "tools:* tools:read tools:write"
        first = storage.tokens
        tools = await client.list_tools()
        assert "echo" in {t.name for t in tools.tools}

        # the access token runs out: the SDK refreshes (rotation) without the browser
        auth.context.token_expiry_time = time.time() - 1
        await client.list_tools()
        assert browser.visits == 1
        assert storage.tokens.access_token != first.access_token
        assert storage.tokens.refresh_token not in (None, first.refresh_token)
        assert await ping_with(gw, storage.tokens.access_token) == 200

        # the holder revokes the grant: its tokens are refused, and the SDK signs in again
        async with httpx.AsyncClient(timeout=10.0) as plain:
            r = await plain.post(f"{gw.url}/oauth/revoke", data={"token": storage.tokens.refresh_token})
        assert r.status_code == 200
        revoked = storage.tokens.access_token
        assert await ping_with(gw, revoked) == 401
        await client.list_tools()
        assert browser.visits == 2
        assert storage.tokens.access_token != revoked and await ping_with(gw, storage.tokens.access_token) == 200

    async with httpx.AsyncClient(timeout=10.0) as plain:
        answer = await plain.get(
            f"{gw.url}/audit",
            params={"types": "oauth.token_issued,oauth.token_revoked,oauth.client_registered"},
            headers=gw.admin(),
        )
    types = [e["type"] for e in answer.json()["events"]]
    assert types.count("oauth.client_registered") == 1
    assert types.count("oauth.token_issued") == 3  # the code, the refresh, the second sign-in
    assert types.count("oauth.token_revoked") == 1


async def test_a_paid_call_with_an_oauth_token_bills_the_key_it_was_granted_for(oauth_gateway: Gateway) -> None:
    gw = oauth_gateway
    key, bystander = gw.create_key(100), gw.create_key(100)
    browser, storage = HeadlessBrowser(key), MemoryStorage()
    async with (
        httpx2.AsyncClient(auth=provider(gw, browser, storage), timeout=30.0) as http,
        Client(streamable_http_client(f"{gw.url}/mcp", http_client=http)) as client,
    ):  # type: ignore[arg-type]
        result = await client.call_tool("echo", {"text": "hi"})
        assert not result.is_error, result
    assert gw.balance(key) == 99
    assert gw.balance(bystander) == 100
