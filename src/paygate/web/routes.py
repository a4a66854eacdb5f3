"""GET /dashboard, GET /portal and their files: the admin dashboard and the key holders' portal, static files
bundled in the package (`static/<page>/` and the shared `static/common/`), read once when the router is
built and served from memory.

An asset is looked up by its exact name among the files that exist, so no request path ever reaches the
file system (no traversal); anything else is a 404. The pages' own Content-Security-Policy and
`X-Frame-Options: DENY` are added with the other security headers (http/response_headers.py, `WEB_CSP`).
No admin key is needed to load the files: they hold no data, and every call they make sends the key.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The files change only with the package: a browser may keep them for a minute, revalidating after.
CACHE = {"Cache-Control": "no-cache"}


def bundled(folder: str) -> dict[str, tuple[bytes, str]]:
    """Every servable file in `static/<folder>`: name → (bytes, content type)."""
    found: dict[str, tuple[bytes, str]] = {}
    for item in files("paygate.web").joinpath("static", folder).iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1] if "." in item.name else ""
        if item.is_file() and suffix in CONTENT_TYPES:
            found[item.name] = (item.read_bytes(), CONTENT_TYPES[suffix])
    return found


def page_routes(r: APIRouter, path: str, title: str) -> None:
    """`GET /<path>` (its index.html) and `GET /<path>/{asset}` (its files and the shared ones)."""
    assets = {**bundled("common"), **bundled(path)}
    index = assets["index.html"][0]

    async def page() -> Response:
        return Response(index, 200, CACHE, media_type=CONTENT_TYPES[".html"])

    async def asset(asset: str) -> Response:
        found = assets.get(asset)
        if found is None:
            return JSONResponse({"error": "Not found"}, 404)
        return Response(found[0], 200, CACHE, media_type=found[1])

    page.__doc__ = f"The {title}'s page (docs/dashboard.md)."
    asset.__doc__ = f"One of the {title}'s scripts, style sheets or images, by its file name."
    r.add_api_route(f"/{path}", page, methods=["GET"], include_in_schema=False, name=f"{path}_page")
    r.add_api_route(f"/{path}/{{asset}}", asset, methods=["GET"], include_in_schema=False, name=f"{path}_asset")


def router() -> APIRouter:
    r = APIRouter(tags=["web"])
    page_routes(r, "dashboard", "admin dashboard")
    page_routes(r, "portal", "key holders' portal")
    return r
