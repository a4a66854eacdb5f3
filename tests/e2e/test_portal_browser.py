"""The key holders' portal (GET /portal) in a real browser (headless Chromium) against the real CLI: a key
holder signs in with the key or through the gateway's OAuth consent page, sees the balance, quota and rate
windows move after a call, sets an alert, buys credits against the local Stripe stand-in, rotates the key
(the old one is refused); markup in names is shown as text; a refused key or a forged OAuth return does not
sign in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route

from paygate.http.response_headers import WEB_CSP
from tests.browser import chromium
from tests.servers.hostile_names_server import HOSTILE_TOOL
from tests.stripe_support import session_completed, signed_post, stripe_config, stripe_standin
from tests.support import ECHO_COMMAND, Gateway, running_gateway, wait_until, write_config
from tests.web_support import ECHO_RATE, HOSTILE_NAME, Watched, sdk_call, web_gateway

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with web_gateway(tmp_path_factory.mktemp("portal")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.mark.parametrize("width", [1280, 375])
def test_a_key_holder_sees_the_balance_move_and_sets_an_alert_in_the_portal(
    gw: Gateway, browser: Browser, width: int
) -> None:
    key = gw.create_key(30, name=HOSTILE_NAME, allowedTools=["echo"], quota={"dailyCallLimit": 5})
    w = Watched(browser, width)
    w.portal(gw, key)
    assert w.page.inner_text("#balance-credits") == "30 credits"
    assert HOSTILE_NAME in w.page.inner_text("#who")  # the name as text
    hostile_row = w.page.locator("tr", has_text=HOSTILE_TOOL)  # a tool name as text
    assert hostile_row.count() == 1 and hostile_row.locator("td", has_text="not allowed").count() == 1
    assert w.page.locator("tr", has_text="echo").locator("td", has_text="may call").count() == 1
    assert sdk_call(gw, key, "echo", {"text": "from the portal test"})
    w.page.click("#refresh")
    w.page.wait_for_selector("#balance-credits:text-is('29 credits')")
    assert w.page.locator("td", has_text="deduction").count() == 1
    rate = w.page.locator("section[aria-labelledby=s-rate-limits] tr", has_text="echo")
    assert f"1 of {ECHO_RATE}" in rate.inner_text() and str(ECHO_RATE - 1) in rate.inner_text()
    assert "no limit" in w.page.locator("section[aria-labelledby=s-rate-limits] tr", has_text="All tools").inner_text()
    quota = w.page.locator("section[aria-labelledby=s-balance] div", has_text="Calls daily")
    assert quota.locator("dd").inner_text() == "1 of 5"

    w.page.fill("#alert-threshold", "25")
    w.page.click("#alert-save")
    w.page.wait_for_selector("#alert-remove")
    alert = gw.client.get("/balance/alerts", headers={"X-API-Key": key}).json()
    assert alert["configured"] and alert["alert"]["lowCreditThreshold"] == 25
    w.page.click("#alert-remove")
    w.page.wait_for_selector("#alert-state:has-text('No alert')")
    assert not gw.client.get("/balance/alerts", headers={"X-API-Key": key}).json()["configured"]

    assert w.page.evaluate("document.documentElement.scrollWidth") <= width
    assert w.page.locator("img").count() == 0
    w.page.click("#sign-out")
    assert w.page.evaluate("sessionStorage.getItem('paygate.apiKey')") is None
    w.clean()


def test_a_key_holder_buys_credits_through_stripe_checkout_in_the_portal(browser: Browser, tmp_path: Path) -> None:
    """Against the local Stripe stand-in (tests/stripe_support.py): the portal asks the gateway for a Checkout
    Session and sends the browser to its URL; Stripe's signed webhook then credits the key, and the portal
    shows the new balance."""
    with stripe_standin() as standin:
        config = write_config(tmp_path, stripe_config(standin.url))
        with running_gateway("--server", ECHO_COMMAND, "--config", config) as gw:
            key = gw.create_key(2)
            w = Watched(browser)
            sent_to: list[str] = []

            def stripe_page(route: Route) -> None:  # Stripe's own page is not reachable here
                sent_to.append(route.request.url)
                route.fulfill(status=200, body="Stripe Checkout", content_type="text/plain")

            w.page.route("https://checkout.stripe.com/**", stripe_page)
            w.portal(gw, key)
            assert w.page.locator("button[data-package]").count() == 2
            w.page.click("button[data-package=starter]")
            w.page.wait_for_url("https://checkout.stripe.com/**")
            created = standin.requests[-1]["form"]
            session_id = sent_to[-1].rsplit("/", 1)[-1]
            meta = {k[9:-1]: v for k, v in created.items() if k.startswith("metadata[")}
            paid = session_completed(meta, session=session_id)
            assert signed_post(gw.client, paid).json()["action"] == "credited"
            w.page.go_back()
            w.page.wait_for_selector("#balance-credits:text-is('102 credits')")
            assert gw.balance(key) == 102
            w.clean()


def test_a_key_holder_rotates_their_key_in_the_portal_and_the_old_one_stops_working(
    gw: Gateway, browser: Browser
) -> None:
    old = gw.create_key(9, name="rotating in the browser")
    w = Watched(browser)
    w.portal(gw, old)
    w.page.click("#rotate")
    w.page.click("#rotate-confirm")
    new = w.page.inner_text("#new-key-value", timeout=10_000)
    assert new.startswith("pg_") and new != old
    assert w.page.evaluate("sessionStorage.getItem('paygate.apiKey')") == new  # the tab goes on with it
    assert w.page.inner_text("#balance-credits") == "9 credits"
    assert gw.client.get("/balance", headers={"X-API-Key": old}).status_code == 401
    assert "error" in gw.call_tool("echo", {"text": "old key"}, old)
    assert sdk_call(gw, new, "echo", {"text": "new key"})
    assert gw.balance(new) == 8
    w.page.click("text=Done, hide it")
    assert w.page.locator("#new-key-value").count() == 0
    w.clean()


def test_a_refused_key_does_not_sign_in_to_the_portal(gw: Gateway, browser: Browser) -> None:
    w = Watched(browser)
    w.page.goto(f"{gw.url}/portal")
    w.page.fill("#api-key", "pg_" + "0" * 48)
    w.page.click("#sign-in-form button[type=submit]")
    w.page.wait_for_selector("#sign-in-error:has-text('refused')")
    assert w.page.evaluate("sessionStorage.getItem('paygate.apiKey')") is None
    w.page.close()  # the refused requests log console errors (401), which is the point here


def oauth_sign_in(w: Watched, gw: Gateway, key: str) -> None:
    """Sign in with OAuth: the portal sends the tab to the consent page, the holder pastes the key there and
    approves, and the portal comes back with a token."""
    answer = w.page.goto(f"{gw.url}/portal")
    assert answer is not None and answer.headers["content-security-policy"] == WEB_CSP
    w.page.click("#oauth-sign-in")
    w.page.wait_for_url("**/oauth/authorize?**")
    w.page.fill("#api_key", key)
    w.page.click("button[value=approve]")
    w.page.wait_for_selector("#balance-credits")


def test_a_key_holder_signs_in_through_oauth(gw: Gateway, browser: Browser) -> None:
    key = gw.create_key(12, name="OAuth holder")
    w = Watched(browser)
    oauth_sign_in(w, gw, key)
    assert w.page.url == f"{gw.url}/portal"  # the code left the address bar
    assert "through OAuth" in w.page.inner_text("#who") and w.page.inner_text("#balance-credits") == "12 credits"
    stored = w.page.evaluate("JSON.parse(sessionStorage.getItem('paygate.oauthTokens'))")
    assert stored["access"].startswith("pg_at_") and w.page.evaluate("sessionStorage.getItem('paygate.apiKey')") is None
    assert key not in w.page.evaluate("JSON.stringify({...sessionStorage, ...localStorage})")
    w.page.wait_for_selector("#rotate-needs-key")  # a token cannot rotate the key: no button
    assert w.page.locator("#rotate").count() == 0
    # the token reads the account but calls no paid tool (scope tools:read)
    assert "insufficient_scope" in str(gw.call_tool("echo", {"text": "with the token"}, stored["access"]))
    assert sdk_call(gw, key, "echo", {"text": "with the key"})
    w.page.click("#refresh")
    w.page.wait_for_selector("#balance-credits:text-is('11 credits')")
    w.page.click("#sign-out")
    w.page.wait_for_selector("#sign-in:not([hidden])")
    assert w.page.evaluate("sessionStorage.getItem('paygate.oauthTokens')") is None

    def revoked() -> bool:
        return gw.client.get("/balance", headers={"Authorization": f"Bearer {stored['access']}"}).status_code == 401

    wait_until(revoked, what="the token revoked")  # sign-out revokes the grant (a request the page does not wait for)
    oauth_sign_in(w, gw, key)  # a second sign-in from this browser reuses the portal's registration
    clients = gw.client.get("/oauth/clients", headers=gw.admin()).json()["clients"]
    assert [c["clientName"] for c in clients].count("PayGate portal") == 1
    w.clean()


def test_a_forged_oauth_return_does_not_sign_in(gw: Gateway, browser: Browser) -> None:
    w = Watched(browser)
    w.page.goto(f"{gw.url}/portal?code=stolen&state=forged&iss={gw.url}")
    w.page.wait_for_selector("#sign-in-error:has-text('not started from this tab')")
    assert w.page.url == f"{gw.url}/portal"
    assert w.page.evaluate("sessionStorage.getItem('paygate.oauthTokens')") is None
    w.clean()
