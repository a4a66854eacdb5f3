"""The admin dashboard (GET /dashboard) in a real browser (headless Chromium) against the real CLI in front of
a real MCP server: an operator signs in, creates a key, tops it up, watches a call made by an MCP SDK client
appear live, suspends the key and sees the next call denied; a viewer gets no change buttons and the API
refuses it; markup in key names, tags and tool names is shown as text; every page renders under the pages'
CSP without a violation or script error, at desktop and at 375 px width."""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from playwright.sync_api import Browser, Page, Route

from paygate.http.response_headers import WEB_CSP
from tests.browser import chromium
from tests.servers.hostile_names_server import HOSTILE_TOOL
from tests.stripe_support import session_completed, signed_post, stripe_config, stripe_standin
from tests.support import ECHO_COMMAND, PYTHON, ROOT, Gateway, running_gateway, write_config

pytestmark = pytest.mark.e2e

SERVER = f"{PYTHON} {ROOT / 'tests' / 'servers' / 'hostile_names_server.py'}"
PAGES = ["overview", "keys", "analytics", "webhooks", "system", "audit"]
HOSTILE_NAME = "<img src=x onerror=alert('name')>"
HOSTILE_TAG = ("<script>alert('tag')</script>", "<svg onload=alert('value')>")


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway("--server", SERVER, "--rate-limit", "0") as gateway:
        yield gateway


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def sdk_call(gw: Gateway, key: str, tool: str, arguments: dict[str, str]) -> bool:
    """One tools/call by the official MCP SDK client (in its own thread: the browser's driver owns this
    one); True when it was answered without an error."""

    async def call() -> bool:
        async with (
            httpx2.AsyncClient(headers={"X-API-Key": key}, timeout=30.0) as http,
            Client(streamable_http_client(f"{gw.url}/mcp", http_client=http)) as client,  # type: ignore[arg-type]
        ):
            try:
                result = await client.call_tool(tool, arguments)
            except Exception:  # the SDK raises a JSON-RPC error (a gate denial) as an exception
                return False
            return not result.is_error

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, call()).result(timeout=60)


class Watched:
    """A page with what must never happen on it recorded: dialogs (an injected alert), CSP violations and
    script errors."""

    def __init__(self, browser: Browser, width: int = 1280) -> None:
        self.page: Page = browser.new_page(viewport={"width": width, "height": 900})
        self.dialogs: list[str] = []
        self.problems: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.problems.append(f"error: {e}"))
        self.page.on(
            "console",
            lambda m: self.problems.append(m.text) if "Content Security Policy" in m.text else None,
        )

    def sign_in(self, gw: Gateway, admin_key: str) -> None:
        answer = self.page.goto(f"{gw.url}/dashboard")
        assert answer is not None and answer.status == 200
        self.page.fill("#admin-key", admin_key)
        self.page.click("#sign-in-form button[type=submit]")
        self.page.wait_for_selector("#main h2")

    def portal(self, gw: Gateway, key: str) -> None:
        answer = self.page.goto(f"{gw.url}/portal")
        assert answer is not None and answer.headers["content-security-policy"] == WEB_CSP
        self.page.fill("#api-key", key)
        self.page.click("#sign-in-form button[type=submit]")
        self.page.wait_for_selector("#balance-credits")

    def open(self, name: str) -> None:
        self.page.click(f"nav a[href='#{name}']")
        self.page.wait_for_selector(f"nav a[href='#{name}'][aria-current=page]")
        self.page.wait_for_selector("#main .page:not([aria-busy])")

    def clean(self) -> None:
        assert self.dialogs == [] and self.problems == []
        self.page.close()


def test_an_operator_creates_tops_up_watches_a_call_and_suspends_a_key(gw: Gateway, browser: Browser) -> None:
    w = Watched(browser)
    answer = w.page.goto(f"{gw.url}/dashboard")
    assert answer is not None
    assert answer.headers["content-security-policy"] == WEB_CSP and answer.headers["x-frame-options"] == "DENY"
    w.sign_in(gw, gw.admin_key)
    assert "can make changes" in w.page.inner_text("#who")
    assert w.page.evaluate("sessionStorage.getItem('paygate.adminKey')") == gw.admin_key
    assert gw.admin_key not in w.page.url

    w.open("keys")
    w.page.fill("#new-name", "Operator flow")
    w.page.fill("#new-credits", "5")
    w.page.fill("#new-alias", "operator-flow")
    w.page.click("text=Create key")
    key = w.page.inner_text("#new-key-value", timeout=10_000)
    assert key.startswith("pg_") and gw.balance(key) == 5
    w.page.click("text=Done, hide it")
    assert w.page.locator("#new-key-value").count() == 0  # shown once: gone from the page

    w.page.click("text=Manage operator-flow")
    w.page.fill("#topup-credits", "10")
    w.page.click("#do-topup")
    w.page.wait_for_selector("#manage-result:has-text('balance 15')")
    assert gw.balance(key) == 15

    w.open("overview")
    w.page.wait_for_selector("#live-state:has-text('Live')")
    assert sdk_call(gw, key, "echo", {"text": "watched"})
    masked = f"{key[:7]}…{key[-4:]}"
    allowed = w.page.locator("#call-feed li.allowed", has_text=masked)
    allowed.wait_for(timeout=10_000)
    assert "echo" in allowed.inner_text() and "allowed, 1 credits" in allowed.inner_text()

    w.open("keys")
    w.page.click("text=Manage operator-flow")
    w.page.fill("#suspend-reason", "browser test")
    w.page.click("#do-suspend")
    w.page.wait_for_selector("#manage-result:has-text('Suspended')")
    w.page.wait_for_selector("#key-list td:has-text('suspended')")

    w.open("overview")
    w.page.wait_for_selector("#live-state:has-text('Live')")
    assert not sdk_call(gw, key, "echo", {"text": "refused"})
    w.page.locator("#call-feed li.denied", has_text="key_suspended").wait_for(timeout=10_000)
    assert gw.balance(key) == 14

    w.page.click("#sign-out")
    w.page.wait_for_selector("#sign-in:not([hidden])")
    assert w.page.evaluate("sessionStorage.getItem('paygate.adminKey')") is None
    w.clean()


def test_a_viewer_sees_everything_and_can_change_nothing(gw: Gateway, browser: Browser) -> None:
    made = gw.client.post("/admin/keys", json={"name": "dashboard viewer", "role": "viewer"}, headers=gw.admin())
    viewer = made.json()["key"]
    key = gw.create_key(7)
    gw.client.post("/keys/alias", json={"key": key, "alias": "viewer-target"}, headers=gw.admin()).raise_for_status()
    w = Watched(browser)
    w.sign_in(gw, viewer)
    assert "viewer (read only)" in w.page.inner_text("#who")
    w.open("keys")
    w.page.wait_for_selector("#key-list td:has-text('viewer-target')")
    for absent in ("text=Create key", "#do-topup", "#do-suspend", "text=Manage viewer-target"):
        assert w.page.locator(absent).count() == 0, absent
    w.open("webhooks")
    assert w.page.locator("#replay-all").count() == 0
    w.open("system")
    assert w.page.locator("#maintenance-on").count() == 0
    # the buttons are only absent: a request made by hand from the page is refused by the API
    forced = w.page.evaluate(
        """async (key) => (await fetch('/topup', {method: 'POST', body: JSON.stringify({key, credits: 5}),
        headers: {'Content-Type': 'application/json', 'X-Admin-Key': sessionStorage.getItem('paygate.adminKey')}}))
        .status""",
        key,
    )
    assert forced == 403 and gw.balance(key) == 7
    w.clean()


def test_markup_in_key_names_tags_and_tool_names_is_shown_as_text(gw: Gateway, browser: Browser) -> None:
    key = gw.create_key(20, name=HOSTILE_NAME, tags=dict([HOSTILE_TAG]))
    assert sdk_call(gw, key, HOSTILE_TOOL, {"text": "x"})
    w = Watched(browser)
    w.sign_in(gw, gw.admin_key)
    w.page.wait_for_selector("#live-state:has-text('Live')")
    assert sdk_call(gw, key, HOSTILE_TOOL, {"text": "live"})
    w.page.locator("#call-feed li", has_text=HOSTILE_TOOL).wait_for(timeout=10_000)
    w.page.wait_for_selector(f"text={HOSTILE_NAME}")  # top consumers, refreshed after the call
    w.open("keys")
    w.page.fill("#key-search", "<img")
    w.page.click("text=Search")
    w.page.wait_for_selector(f'#key-list td:text-is("{HOSTILE_NAME}")')
    assert w.page.locator(f'#key-list td:text-is("{HOSTILE_TAG[0]}={HOSTILE_TAG[1]}")').count() == 1
    w.open("analytics")
    assert w.page.locator("svg text", has_text="<img src=x").count() >= 1  # the tool's bar label, as text
    w.open("audit")
    assert w.page.locator("#audit-list td", has_text=HOSTILE_NAME).count() >= 1
    # nothing the markup asked for exists: no image, no script beyond the page's own module, no svg onload
    assert w.page.locator("img").count() == 0
    assert w.page.locator("script").count() == 1
    assert w.page.locator("svg[onload]").count() == 0
    w.clean()


@pytest.mark.parametrize("width", [1280, 375])
def test_every_page_renders_under_the_csp_and_fits_a_phone(gw: Gateway, browser: Browser, width: int) -> None:
    w = Watched(browser, width)
    w.sign_in(gw, gw.admin_key)
    for name in PAGES:
        w.open(name)
        assert w.page.locator("#notice.error").count() == 0, w.page.inner_text("#notice")
        # no sideways scrolling of the page itself (wide tables scroll inside their own box)
        assert w.page.evaluate("document.documentElement.scrollWidth") <= width, name
    # keyboard: the first Tab on a fresh load reaches the skip link, and every input has a label
    w.page.reload()
    w.page.wait_for_selector("#main .page:not([aria-busy])")
    w.page.keyboard.press("Tab")
    assert w.page.evaluate("document.activeElement.className") == "skip"
    unlabelled = w.page.evaluate(
        "[...document.querySelectorAll('input, select')].filter(e => !e.labels || !e.labels.length).map(e => e.id)"
    )
    assert unlabelled == []
    w.clean()


@pytest.mark.parametrize("width", [1280, 375])
def test_a_key_holder_sees_the_balance_move_and_sets_an_alert_in_the_portal(
    gw: Gateway, browser: Browser, width: int
) -> None:
    key = gw.create_key(30, name=HOSTILE_NAME, allowedTools=["echo"])
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


def test_the_static_files_are_in_the_wheel(tmp_path: Path) -> None:
    """pyproject's package-data ships the pages: build the wheel as a user would (pip, in an isolated build
    environment with the setuptools pyproject asks for) and look inside."""
    project = tmp_path / "project"  # a copy: the build leaves build/ and *.egg-info behind in its tree
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", *(p.name for p in ROOT.glob("LICEN[CS]E*"))):
        shutil.copy(ROOT / name, project / name)
    built = subprocess.run(
        [PYTHON, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(project)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("paygate*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    static = ROOT / "src" / "paygate" / "web" / "static"
    expected = {f"paygate/web/static/{p.relative_to(static)}" for p in static.glob("*/*")}
    assert expected and expected <= names
