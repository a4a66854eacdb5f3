"""GET /dashboard and its files (web/routes.py): the right content types, the pages' own CSP while the API
keeps `default-src 'none'`, 404 for anything that is not one of the bundled files (no path reaches the file
system), and the two API behaviours the pages rely on."""

from __future__ import annotations

import re
from importlib.resources import files

import httpx
import pytest

from paygate.http.response_headers import API_CSP, WEB_CSP, is_web
from tests.inprocess import InProcessGateway

STATIC = files("paygate.web").joinpath("static", "dashboard")
BUNDLED = sorted(item.name for item in STATIC.iterdir() if item.is_file())


def test_the_page_is_html_under_the_pages_csp_and_never_framed(gw: InProcessGateway) -> None:
    page = gw.client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == WEB_CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/dashboard/app.js">' in page.text
    # the sign-in form, were its script not to run, posts the key in a body the gateway refuses
    assert '<form id="sign-in-form" method="post" action="/dashboard">' in page.text
    assert gw.client.post("/dashboard", data={"admin-key": "x"}).status_code == 405
    # the API's answers keep their own policy
    assert gw.client.get("/health").headers["content-security-policy"] == API_CSP
    assert gw.client.get("/dashboards").headers["content-security-policy"] == API_CSP


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_file_is_served_with_its_content_type(gw: InProcessGateway, name: str) -> None:
    answer = gw.client.get(f"/dashboard/{name}")
    expected = {"js": "text/javascript", "css": "text/css", "html": "text/html", "svg": "image/svg+xml"}
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(expected[name.rsplit(".", 1)[1]])
    assert answer.headers["content-security-policy"] == WEB_CSP
    assert answer.content == STATIC.joinpath(name).read_bytes()


def test_every_module_the_scripts_import_is_served(gw: InProcessGateway) -> None:
    scripts = [n for n in BUNDLED if n.endswith(".js")]
    imported = {m for n in scripts for m in re.findall(r'from "\./([^"]+)"', STATIC.joinpath(n).read_text())}
    assert imported and imported <= set(scripts)
    page = gw.client.get("/dashboard").text
    for ref in re.findall(r'(?:src|href)="/dashboard/([^"]+)"', page):
        assert gw.client.get(f"/dashboard/{ref}").status_code == 200, ref


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/dashboard/nope.js",
        b"/dashboard/routes.py",  # in the package, beside static/: not a bundled file
        b"/dashboard/..%2Froutes.py",
        b"/dashboard/..%2F..%2F__init__.py",
        b"/dashboard/%2e%2e%2f%2e%2e%2fpyproject.toml",
        b"/dashboard/..\\routes.py",
        b"/dashboard/app.js%00.css",
        b"/dashboard/APP.JS",
    ],
)
def test_anything_but_a_bundled_file_is_404(gw: InProcessGateway, raw_path: bytes) -> None:
    with httpx.Client(base_url=gw.url) as client:
        request = client.build_request("GET", gw.url)
        request.url = request.url.copy_with(raw_path=raw_path)
        answer = client.send(request)
    assert answer.status_code == 404
    assert "text/html" not in answer.headers.get("content-type", "")


def test_web_paths() -> None:
    assert is_web("/dashboard") and is_web("/dashboard/app.js")
    assert not is_web("/dashboards") and not is_web("/admin/dashboard") and not is_web("/keys/dashboard")


def test_no_inline_script_or_style_and_no_markup_from_strings() -> None:
    """The CSP refuses inline script and style, and the pages build the DOM from text only."""
    page = STATIC.joinpath("index.html").read_text()
    assert "style=" not in page and "<style" not in page
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))
    for name in (n for n in BUNDLED if n.endswith(".js")):
        source = STATIC.joinpath(name).read_text()
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", ".style."):
            assert forbidden not in source, (name, forbidden)


def test_the_role_probe_the_dashboard_signs_in_with_changes_nothing(gw: InProcessGateway) -> None:
    """No endpoint names an admin key's role: the dashboard posts an empty top-up, which a viewer is refused
    (403) before the body is read, and anyone else gets a 400 for the missing fields."""
    made = gw.client.post("/admin/keys", json={"name": "dash viewer", "role": "viewer"}, headers=gw.admin())
    viewer = {"X-Admin-Key": made.json()["key"]}
    before = gw.client.get("/admin/dashboard", headers=gw.admin()).json()["credits"]
    assert gw.client.post("/topup", json={}, headers=viewer).status_code == 403
    assert gw.client.post("/topup", json={}, headers=gw.admin()).status_code == 400
    assert gw.client.get("/admin/dashboard", headers=viewer).status_code == 200
    assert gw.client.get("/admin/dashboard", headers=gw.admin()).json()["credits"] == before
