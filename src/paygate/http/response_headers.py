"""The headers every response carries, computed once at start: the built-in security headers, the
operator's `customHeaders` (which replace a built-in one of the same name) and CORS's fixed part.

Security headers: `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, `X-XSS-Protection: 0`
(the old XSS auditors did more harm than good), `Referrer-Policy: no-referrer`,
`Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` (the API serves JSON, never
pages), and `Cache-Control: no-store` on a response that sets no Cache-Control of its own. The
interactive API pages (/docs, /redoc) get a policy that lets them load Swagger UI / ReDoc from the
CDN FastAPI uses and call this origin, and nothing else. The web pages (`/dashboard`, `/portal`: web/routes.py) get
`WEB_CSP`: scripts, styles, images and fetches from this origin only, no inline script or style, no
forms posted elsewhere, never framed.

Per request only the Origin-dependent part is added (http/cors.py), and only when the request has an
`Origin`; a request without one gets a tuple built here. A POST to /mcp without an `Origin` gets no CORS
headers at all (no browser sent it, and no cache stores the answer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from paygate.http.cors import STAR, CorsPolicy, Pair

API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.jsdelivr.net; "
    "connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)
WEB_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
WEB_PREFIXES = ("/dashboard", "/portal")
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
SECURITY: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("X-XSS-Protection", "0"),
    ("Referrer-Policy", "no-referrer"),
)
CACHE_CONTROL = b"cache-control"


def _pairs(custom: Mapping[str, str], csp: str) -> tuple[Pair, ...]:
    chosen = {name.lower(): value for name, value in custom.items() if name.lower() != "cache-control"}
    builtin = [(n, v) for n, v in (*SECURITY, ("Content-Security-Policy", csp)) if n.lower() not in chosen]
    return tuple((n.lower().encode(), v.encode()) for n, v in builtin) + tuple(
        (n.encode(), v.encode()) for n, v in chosen.items()
    )


class ResponseHeaders:
    """What `GatewayApp` adds to every response start (after `X-Request-Id`)."""

    __slots__ = (
        "_api",
        "_docs",
        "_plain_api",
        "_plain_docs",
        "_plain_web",
        "_web",
        "cache_control",
        "cors",
        "mcp_plain",
        "plain_allowed",
    )

    def __init__(self, custom: Mapping[str, str], cors: CorsPolicy, version: Pair) -> None:
        self.cors = cors
        cache = next((v for n, v in custom.items() if n.lower() == "cache-control"), "no-store")
        self.cache_control: Pair = (CACHE_CONTROL, cache.encode())
        self._api = (version, *_pairs(custom, API_CSP), *cors.static)
        self._docs = (version, *_pairs(custom, DOCS_CSP), *cors.static)
        self._web = (version, *_pairs(custom, WEB_CSP), *cors.static)
        star = STAR if cors.star else ()
        self.plain_allowed: tuple[Pair, ...] = star  # the Allow-Origin part for a request without an Origin
        self._plain_api = (*self._api, *star)  # a request without an Origin
        self._plain_docs = (*self._docs, *star)
        self._plain_web = (*self._web, *star)
        # /mcp without an Origin (an agent, not a browser; a POST no cache keeps): the hot path's case,
        # nothing built per request, and no CORS headers, which only a browser reads: uvicorn checks every
        # header of every response with two regexes, ~1.2 µs a header (bench/README.md, issue 12).
        self.mcp_plain = (version, *_pairs(custom, API_CSP))

    def for_request(self, path: str, origin: bytes | None, mcp: bool) -> tuple[tuple[Pair, ...], tuple[Pair, ...]]:
        """(every header to add, the CORS Allow-Origin part of them: empty if the origin is not allowed)."""
        if path in DOCS_PATHS:
            plain, base = self._plain_docs, self._docs
        elif is_web(path):
            plain, base = self._plain_web, self._web
        else:
            plain, base = self._plain_api, self._api
        if origin is None:
            return plain, self.plain_allowed
        allow = self.cors.allow(origin, mcp)
        return (*base, *allow), allow


def is_web(path: str) -> bool:
    """A web page or one of its files (`/dashboard`, `/dashboard/app.js`), not `/dashboards`."""
    return any(path == p or path.startswith(p + "/") for p in WEB_PREFIXES)


def has_cache_control(headers: Sequence[Sequence[bytes]]) -> bool:
    for header in headers:  # noqa: SIM110 (a plain loop: no generator per response)
        if header[0] == CACHE_CONTROL:
            return True
    return False
