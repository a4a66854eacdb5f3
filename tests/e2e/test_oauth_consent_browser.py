"""The OAuth consent page in a real browser (headless Chromium) against the real CLI: the page renders under
the gateway's strict Content-Security-Policy, the key holder pastes a key and approves, and the browser is
sent to the client's redirect URI with a code that the client exchanges for a token billing that key; a
denial sends `access_denied`; a form replayed without the page's cookie (what a cross-site post looks like)
is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route

from tests.api.oauth.flow import REDIRECT, pkce
from tests.browser import chromium
from tests.support import ECHO_COMMAND, Gateway, running_gateway, write_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = write_config(Path(tmp_path_factory.mktemp("consent")), {"oauth": {}})
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def authorize_url(gw: Gateway) -> tuple[str, str, str]:
    """(URL of the consent page, client id, PKCE verifier) for a freshly registered public client."""
    body = {"client_name": "Browser agent", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}
    client_id = gw.client.post("/oauth/register", json=body).json()["client_id"]
    verifier, challenge = pkce()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": "browser-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "scope": "tools:echo",
    }
    return f"{gw.url}/oauth/authorize?{urlencode(query)}", client_id, verifier


def catch_redirect(page: Page) -> list[str]:
    """The client's callback is not served here: the browser's request to it is answered by the test."""
    seen: list[str] = []

    def answer(route: Route) -> None:
        seen.append(route.request.url)
        route.fulfill(status=200, body="callback reached", content_type="text/plain")

    page.route(f"{REDIRECT}**", answer)
    return seen


def test_a_key_holder_approves_in_the_browser_and_the_client_gets_a_token(gw: Gateway, browser: Browser) -> None:
    key = gw.create_key(10)
    url, client_id, verifier = authorize_url(gw)
    page = browser.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    seen = catch_redirect(page)
    response = page.goto(url)
    assert response is not None and response.status == 200
    assert "default-src 'none'" in (response.headers.get("content-security-policy") or "")
    assert page.title() == "Authorize Browser agent"
    assert "call the tool echo" in page.inner_text("main")
    page.fill("#api_key", key)
    page.click("button[value=approve]")
    page.wait_for_url(f"{REDIRECT}**")
    assert page.inner_text("body") == "callback reached" and violations == []
    query = {k: v[0] for k, v in parse_qs(urlsplit(seen[-1]).query).items()}
    assert query["state"] == "browser-state" and query["iss"] == gw.url
    form = {
        "grant_type": "authorization_code",
        "code": query["code"],
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    token = gw.client.post("/oauth/token", data=form).json()["access_token"]
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}
    assert "result" in gw.client.post("/mcp", json=call, headers={"Authorization": f"Bearer {token}"}).json()
    assert gw.balance(key) == 9
    page.close()


def test_deny_sends_access_denied_and_a_form_without_the_pages_cookie_is_refused(gw: Gateway, browser: Browser) -> None:
    url, _, _ = authorize_url(gw)
    page = browser.new_page()
    seen = catch_redirect(page)
    page.goto(url)
    fields = {
        name: page.get_attribute(f"input[type=hidden][name='{name}']", "value") or ""
        for name in page.eval_on_selector_all("input[type=hidden]", "els => els.map(e => e.name)")
    }
    page.click("button[value=deny]")
    page.wait_for_url(f"{REDIRECT}**")
    assert parse_qs(urlsplit(seen[-1]).query)["error"] == ["access_denied"]
    page.close()
    # the same form posted from elsewhere: no SameSite=Strict cookie comes with it
    with httpx.Client(base_url=gw.url, follow_redirects=False) as stranger:
        forged = stranger.post("/oauth/authorize", data={**fields, "decision": "approve", "api_key": gw.create_key(1)})
    assert forged.status_code == 400 and "location" not in forged.headers
