"""What the web pages' browser tests share (tests/e2e/test_dashboard_browser.py, test_portal_browser.py): the
gateway they run against (the real CLI in front of an MCP server whose tool names are markup, with OAuth on
and a per-tool rate limit on `echo`), a page that records what must never happen on it, and a tool call by
the official MCP SDK client."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from playwright.sync_api import Browser, Page

from paygate.http.response_headers import WEB_CSP
from tests.support import PYTHON, ROOT, Gateway, running_gateway, write_config

SERVER = f"{PYTHON} {ROOT / 'tests' / 'servers' / 'hostile_names_server.py'}"
HOSTILE_NAME = "<img src=x onerror=alert('name')>"
HOSTILE_TAG = ("<script>alert('tag')</script>", "<svg onload=alert('value')>")
ECHO_RATE = 50  # calls per minute per key on `echo`: the portal shows this window
CONFIG = {"oauth": {}, "toolPricing": {"echo": {"rateLimitPerMin": ECHO_RATE}}}


@contextmanager
def web_gateway(directory: Path) -> Iterator[Gateway]:
    config = write_config(directory, CONFIG)
    with running_gateway("--server", SERVER, "--rate-limit", "0", "--config", config) as gateway:
        yield gateway


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
