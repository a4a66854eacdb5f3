"""The admin dashboard (GET /dashboard) in a real browser (headless Chromium) against the real CLI in front of
a real MCP server: an operator signs in, creates a key, tops it up, watches a call made by an MCP SDK client
appear live, suspends the key and sees the next call denied (and the denial by reason); rotates a key (the old
one is refused), edits its ACL (a removed tool is denied) and its limits; sees the breakers, cache and
concurrency; a viewer gets no change buttons and the API refuses it; markup in key names, tags and tool names
is shown as text; every page renders under the pages' CSP without a violation or script error, at desktop
and at 375 px width. The portal's tests are in test_portal_browser.py."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from paygate.http.response_headers import WEB_CSP
from tests.browser import chromium
from tests.servers.hostile_names_server import HOSTILE_TOOL
from tests.support import PYTHON, ROOT, Gateway
from tests.web_support import HOSTILE_NAME, HOSTILE_TAG, Watched, sdk_call, web_gateway

pytestmark = pytest.mark.e2e

PAGES = ["overview", "keys", "analytics", "webhooks", "system", "audit"]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with web_gateway(tmp_path_factory.mktemp("dashboard")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


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
    w.page.locator("#denials tr", has_text="key_suspended").wait_for(timeout=10_000)  # the figures follow the feed

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
    absent_controls = ("text=Create key", "#do-topup", "#do-suspend", "text=Manage viewer-target", "#do-rotate")
    for absent in (*absent_controls, "#save-acl", "#save-limits"):
        assert w.page.locator(absent).count() == 0, absent
    w.open("webhooks")
    assert w.page.locator("#replay-all").count() == 0
    w.open("system")
    assert w.page.locator("#maintenance-on").count() == 0 and w.page.locator("#circuit-reset").count() == 0
    w.page.wait_for_selector("#circuit-state")  # the state is shown, only its buttons are absent
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


def refused(gw: Gateway, key: str) -> bool:
    return gw.client.get("/balance", headers={"X-API-Key": key}).status_code == 401


def listed(gw: Gateway, alias: str) -> dict[str, Any]:
    page = gw.client.get("/keys", params={"limit": 500}, headers=gw.admin()).json()
    (row,) = [k for k in page["keys"] if k["alias"] == alias]
    return dict(row)


def test_an_operator_rotates_a_key_then_edits_its_acl_and_limits(gw: Gateway, browser: Browser) -> None:
    old = gw.create_key(10, name=HOSTILE_NAME, allowedTools=["echo", HOSTILE_TOOL])
    gw.client.post("/keys/alias", json={"key": old, "alias": "edit-target"}, headers=gw.admin()).raise_for_status()
    w = Watched(browser)
    w.sign_in(gw, gw.admin_key)
    w.open("keys")
    w.page.click("text=Manage edit-target")
    assert w.page.input_value("#acl-allowed") == f"echo, {HOSTILE_TOOL}"  # the key's settings, as text
    assert HOSTILE_NAME in w.page.inner_text("#edit-current")

    w.page.click("#do-rotate")
    w.page.click("#confirm-rotate")
    new = w.page.inner_text("#rotated-key-value", timeout=10_000)
    assert new.startswith("pg_") and new != old
    assert HOSTILE_NAME in w.page.inner_text("#rotated-key") and w.page.locator("img").count() == 0
    assert refused(gw, old) and gw.balance(new) == 10
    assert "error" in gw.call_tool("echo", {"text": "old key"}, old)
    assert "result" in gw.call_tool("echo", {"text": "new key"}, new)

    w.page.fill("#acl-allowed", "echo")
    w.page.fill("#acl-denied", "echo")
    w.page.click("#save-acl")
    w.page.wait_for_selector("#edit-result:has-text('Tool access')")
    assert "tool_not_allowed" in str(gw.call_tool("echo", {"text": "denied now"}, new))
    assert gw.balance(new) == 9  # the denied call cost nothing
    row = listed(gw, "edit-target")
    assert (row["allowedTools"], row["deniedTools"]) == (["echo"], ["echo"])

    w.page.fill("#limit-spending", "50")
    w.page.fill("#quota-dailyCallLimit", "100")
    w.page.fill("#limit-ips", "127.0.0.1, 10.0.0.0/8")
    w.page.fill("#expires-hours", "24")
    w.page.click("#save-limits")
    w.page.wait_for_selector("#edit-result:has-text('Expiry')")
    row = listed(gw, "edit-target")
    assert row["spendingLimit"] == 50 and row["ipAllowlist"] == ["127.0.0.1", "10.0.0.0/8"]
    assert row["quota"]["dailyCallLimit"] == 100 and row["quota"]["monthlyCallLimit"] == 0
    assert row["expiresAt"] is not None and row["allowedTools"] == ["echo"]  # untouched fields kept
    w.page.click("#remove-expiry")
    w.page.wait_for_selector("#edit-result:has-text('Expiry removed')")
    assert listed(gw, "edit-target")["expiresAt"] is None
    w.page.click("#rotated-key button")  # Done, hide it: the new key leaves the page
    assert w.page.locator("#rotated-key-value").count() == 0
    w.clean()


def test_the_system_page_shows_breakers_cache_and_concurrency(gw: Gateway, browser: Browser) -> None:
    switched = gw.client.post("/admin/circuit", json={"threshold": 5}, headers=gw.admin())
    assert switched.status_code == 200, switched.text
    key = gw.create_key(5)
    assert "result" in gw.call_tool("echo", {"text": "through the breaker"}, key)
    w = Watched(browser)
    w.sign_in(gw, gw.admin_key)
    w.open("system")
    assert w.page.inner_text("#circuit-state") == "closed"
    breaker = w.page.locator("section[aria-labelledby=s-circuit-breakers] tbody tr").first
    assert "closed" in breaker.inner_text() and "0 of 5" in breaker.inner_text()
    assert "Redis" in w.page.inner_text("#main") and w.page.locator("#concurrency-in-flight").inner_text() == "0"
    assert "off" in w.page.locator("section[aria-labelledby=s-response-cache]").inner_text()
    w.page.click("#circuit-reset")
    w.page.wait_for_selector("#notice:has-text('Breakers reset')")
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
        unlabelled = w.page.evaluate(
            "[...document.querySelectorAll('input, select')].filter(e => !e.labels || !e.labels.length).map(e => e.id)"
        )
        assert unlabelled == [], name
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
