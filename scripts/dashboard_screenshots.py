"""Take the screenshots docs/dashboard.md and docs/portal.md show: the real CLI in front of the test echo
server, a few keys and calls, and each page in headless Chromium at a fixed viewport (1280 by 900, and 375 by
800 for a phone).

    .venv/bin/python scripts/dashboard_screenshots.py      # writes docs/images/dashboard-*.png, portal*.png

The gateway has OAuth on (the portal's second way to sign in), a circuit breaker, the response cache and a
per-tool rate limit, so the system page and the portal have something to show.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import chromium  # noqa: E402 (after the path: tests/ is not installed)
from tests.support import ECHO_COMMAND, running_gateway, wait_until, write_config  # noqa: E402

IMAGES = ROOT / "docs" / "images"
PAGES = ["overview", "keys", "analytics", "webhooks", "system", "audit"]
CONFIG = {
    "oauth": {},
    "circuitBreakerThreshold": 5,
    "cacheTtlSeconds": 60,
    "toolPricing": {"add": {"creditsPerCall": 3, "rateLimitPerMin": 30}},
}


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    config = write_config(Path(tempfile.mkdtemp()), CONFIG)
    with (
        running_gateway("--server", ECHO_COMMAND, "--rate-limit", "100", "--config", config) as gw,
        chromium() as b,
    ):
        quota = {"dailyCallLimit": 1000, "monthlyCreditLimit": 20000}
        keys = {
            name: gw.create_key(credits, name=name, quota=quota)
            for name, credits in [("Acme search bot", 500), ("Research team", 200), ("Trial user", 3)]
        }
        for key, calls in zip(keys.values(), (12, 6, 5), strict=True):
            for i in range(calls):
                gw.call_tool("add" if i % 3 else "echo", {"a": i, "b": 1} if i % 3 else {"text": "hi"}, key)
        gw.client.post("/keys/alias", json={"key": keys["Acme search bot"], "alias": "acme"}, headers=gw.admin())
        gw.client.post("/keys/suspend", json={"key": keys["Trial user"], "reason": "trial over"}, headers=gw.admin())

        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{gw.url}/dashboard")
        page.screenshot(path=IMAGES / "dashboard-sign-in.png")
        page.fill("#admin-key", gw.admin_key)
        page.click("#sign-in-form button[type=submit]")
        page.wait_for_selector("#live-state:has-text('Live')")
        for key in keys.values():  # calls made while the overview is open: the live feed
            gw.call_tool("echo", {"text": "live"}, key)
        wait_until(lambda: page.locator("#call-feed li").count() >= 3, timeout=10)
        page.wait_for_timeout(1500)  # the figures refresh a second after the last event
        for name in PAGES:
            if name != "overview":
                page.click(f"nav a[href='#{name}']")
                page.wait_for_selector("#main .page:not([aria-busy])")
                page.wait_for_timeout(300)
            page.screenshot(path=IMAGES / f"dashboard-{name}.png", full_page=True)
        page.click("nav a[href='#keys']")
        page.wait_for_selector("#main .page:not([aria-busy])")
        page.click("text=Manage acme")
        page.locator("section[aria-labelledby=s-manage-a-key]").screenshot(path=IMAGES / "dashboard-key-manage.png")
        page.close()

        phone = b.new_page(viewport={"width": 375, "height": 800})
        phone.goto(f"{gw.url}/dashboard")
        phone.fill("#admin-key", gw.admin_key)
        phone.click("#sign-in-form button[type=submit]")
        phone.click("nav a[href='#keys']")
        phone.wait_for_selector("#main .page:not([aria-busy])")
        phone.screenshot(path=IMAGES / "dashboard-keys-phone.png")
        phone.close()

        holder = b.new_page(viewport={"width": 1280, "height": 900})
        holder.goto(f"{gw.url}/portal")
        holder.wait_for_selector("#oauth-sign-in:not([hidden])")
        holder.screenshot(path=IMAGES / "portal-sign-in.png")
        holder.fill("#api-key", keys["Acme search bot"])
        holder.click("#sign-in-form button[type=submit]")
        holder.wait_for_selector("#balance-credits")
        holder.screenshot(path=IMAGES / "portal.png", full_page=True)
        holder.close()
    print("\n".join(sorted(str(p.relative_to(ROOT)) for p in IMAGES.glob("*.png"))))


if __name__ == "__main__":
    main()
