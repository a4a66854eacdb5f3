"""GET /dashboard, GET /portal and their files (web/routes.py): the right content types, the pages' own CSP
while the API keeps `default-src 'none'`, 404 for anything that is not one of the bundled files (no path
reaches the file system), and the API behaviours the pages rely on."""

from __future__ import annotations

import re
from importlib.resources import files

import httpx
import pytest

from paygate.http.response_headers import API_CSP, WEB_CSP, is_web
from tests.inprocess import InProcessGateway

STATIC_ROOT = files("paygate.web").joinpath("static")
PAGES = ("dashboard", "portal")


def bundled(page: str) -> dict[str, bytes]:
    """What /<page>/<name> serves: the page's own files and the shared ones."""
    folders = (STATIC_ROOT.joinpath("common"), STATIC_ROOT.joinpath(page))
    return {item.name: item.read_bytes() for folder in folders for item in folder.iterdir() if item.is_file()}


SERVED = [(page, name) for page in PAGES for name in sorted(bundled(page))]


@pytest.mark.parametrize("path", ["/dashboard", "/portal"])
def test_the_page_is_html_under_the_pages_csp_and_never_framed(gw: InProcessGateway, path: str) -> None:
    page = gw.client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == WEB_CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/' in page.text
    # the sign-in form, were its script not to run, posts the key in a body the gateway refuses
    assert f'<form id="sign-in-form" method="post" action="{path}">' in page.text
    assert gw.client.post(path, data={"key": "x"}).status_code == 405
    # the API's answers keep their own policy
    assert gw.client.get("/health").headers["content-security-policy"] == API_CSP
    assert gw.client.get("/dashboards").headers["content-security-policy"] == API_CSP
    assert gw.client.get("/portals").headers["content-security-policy"] == API_CSP


@pytest.mark.parametrize(("page", "name"), SERVED)
def test_every_bundled_file_is_served_with_its_content_type(gw: InProcessGateway, page: str, name: str) -> None:
    answer = gw.client.get(f"/{page}/{name}")
    expected = {"js": "text/javascript", "css": "text/css", "html": "text/html", "svg": "image/svg+xml"}
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(expected[name.rsplit(".", 1)[1]])
    assert answer.headers["content-security-policy"] == WEB_CSP
    assert answer.content == bundled(page)[name]


@pytest.mark.parametrize("page", PAGES)
def test_every_module_the_scripts_import_is_served(gw: InProcessGateway, page: str) -> None:
    sources = {n: b.decode() for n, b in bundled(page).items() if n.endswith(".js")}
    html = gw.client.get(f"/{page}").text
    refs = re.findall(rf'(?:src|href)="/{page}/([^"]+)"', html)
    assert refs
    for ref in refs:
        assert gw.client.get(f"/{page}/{ref}").status_code == 200, ref
    reachable = [r for r in refs if r.endswith(".js")]
    for script in reachable:  # follow the imports from the page's module
        for imported in re.findall(r'from "\./([^"]+)"', sources[script]):
            assert imported in sources, (script, imported)
            if imported not in reachable:
                reachable.append(imported)


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
        b"/portal/app.js",  # the dashboard's, not the portal's
        b"/dashboard/portal.js",
        b"/portal/..%2Fdashboard%2Fapp.js",
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
    assert is_web("/dashboard") and is_web("/dashboard/app.js") and is_web("/portal") and is_web("/portal/web.css")
    assert not is_web("/dashboards") and not is_web("/admin/dashboard") and not is_web("/keys/dashboard")
    assert not is_web("/portals")


def test_no_inline_script_or_style_and_no_markup_from_strings() -> None:
    """The CSP refuses inline script and style, and the pages build the DOM from text only."""
    for page in PAGES:
        html = bundled(page)["index.html"].decode()
        assert "style=" not in html and "<style" not in html
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    sources = {name: data.decode() for page in PAGES for name, data in bundled(page).items() if name.endswith(".js")}
    for name, source in sources.items():
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


def test_a_key_holder_rotates_their_own_key(gw: InProcessGateway) -> None:
    """POST /portal/rotate: the new key keeps the balance and is shown once; the old one is refused at once."""
    old = gw.create_key(12, name="rotating holder")
    answer = gw.client.post("/portal/rotate", headers={"X-API-Key": old})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    new = body["newKey"]
    assert new != old and new.startswith("pg_") and body["oldKeyMasked"] == f"{old[:7]}…{old[-4:]}"
    assert body["credits"] == 12 and body["name"] == "rotating holder"
    assert gw.balance(new) == 12
    assert gw.client.get("/balance", headers={"X-API-Key": old}).status_code == 401
    assert "error" in gw.call_tool("echo", {"text": "old"}, old)
    rotated = [e for e in gw.events("key.rotated") if e["data"]["oldKeyMasked"] == body["oldKeyMasked"]]
    assert len(rotated) == 1 and rotated[0]["actor"] == body["oldKeyMasked"]
    assert old not in str(rotated) and new not in str(rotated)


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "pg_" + "0" * 48}, {"Authorization": "Bearer nonsense"}, {"X-Admin-Key": "x"}],
)
def test_rotation_without_a_live_key_is_401_and_changes_nothing(gw: InProcessGateway, headers: dict[str, str]) -> None:
    before = len(gw.events("key.rotated"))
    assert gw.client.post("/portal/rotate", headers=headers).status_code == 401
    assert len(gw.events("key.rotated")) == before


def test_a_revoked_key_or_a_token_standing_for_a_key_cannot_rotate_it(gw: InProcessGateway) -> None:
    key = gw.create_key(5)
    token = gw.client.post("/tokens", json={"key": key, "ttl": 300}, headers=gw.admin()).json()["token"]
    assert gw.client.post("/portal/rotate", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert gw.balance(key) == 5  # still the key
    gw.client.post("/keys/revoke", json={"key": key}, headers=gw.admin()).raise_for_status()
    assert gw.client.post("/portal/rotate", headers={"X-API-Key": key}).status_code == 401
