"""Issue 12, the HTTP conventions the reference documents: CORS and preflights on every path, custom
response headers, the built-in security headers, the public-endpoint and admin-API rate limits per
client address, and the session-creation limit's message. In-process gateway, real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paygate.core import address_rate
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, ECHO_SERVER, PYTHON, write_config

APP = "https://app.example.com"
EVIL = "https://evil.example.com"
INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "x-xss-protection": "0",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def config(tmp: Path, **extra: Any) -> str:
    return write_config(tmp, {"serverCommand": PYTHON, "serverArgs": [ECHO_SERVER], **extra})


def preflight(gw: InProcessGateway, path: str, origin: str | None = APP) -> Any:
    headers = {"Access-Control-Request-Method": "POST"} | ({"Origin": origin} if origin else {})
    return gw.client.options(path, headers=headers)


@pytest.fixture(autouse=True)
def _limits_as_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/conftest.py turns the public and admin limits off for the suite; these tests want them."""
    monkeypatch.delenv("PAYGATE_ADMIN_RATE_LIMIT", raising=False)
    monkeypatch.delenv("PAYGATE_PUBLIC_RATE_LIMIT", raising=False)


@pytest.fixture(scope="module")
def default_gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gateway:
        yield gateway


# --- CORS ----------------------------------------------------------------------------------------


def test_a_preflight_is_answered_204_on_every_path(default_gw: InProcessGateway) -> None:
    for path in ("/mcp", "/keys", "/health", "/no/such/path", "/admin/keys"):
        resp = preflight(default_gw, path, origin=None)
        assert resp.status_code == 204, path
        assert resp.content == b"" and "content-length" not in resp.headers
        h = resp.headers
        assert h["access-control-allow-origin"] == "*"  # the reference's default
        assert "POST" in h["access-control-allow-methods"] and "OPTIONS" in h["access-control-allow-methods"]
        for name in ("X-API-Key", "X-Admin-Key", "Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-ID"):
            assert name in h["access-control-allow-headers"], name
        for name in ("X-Signature", "X-Cost-Tags", "traceparent"):  # what the call-path rules read
            assert name in h["access-control-allow-headers"], name
        assert h["access-control-max-age"] == "86400"
        assert h["x-request-id"].startswith("req_") and h["x-paygate-version"]


def test_every_answer_exposes_the_references_headers(default_gw: InProcessGateway) -> None:
    browser = {"Origin": "http://localhost:5173"}
    answers = (
        default_gw.client.get("/health"),
        default_gw.client.get("/nope"),
        default_gw.rpc("ping", headers=browser),
    )
    for resp in answers:
        exposed = resp.headers["access-control-expose-headers"]
        for name in ("Mcp-Session-Id", "X-RateLimit-Remaining", "X-Credits-Remaining", "X-Request-Id", "X-Cache"):
            assert name in exposed
        for name in ("X-Quota-Warning", "X-Dependency-Warning", "X-Guardrail-Warning", "Deprecation", "Sunset"):
            assert name in exposed
        assert resp.headers["access-control-allow-origin"] == "*" and "vary" not in resp.headers


def test_an_agents_post_to_mcp_carries_the_security_headers_but_no_cors_ones(default_gw: InProcessGateway) -> None:
    """No Origin: not a browser, so the CORS headers would be bytes nobody reads (the hot path)."""
    resp = default_gw.rpc("ping")
    assert resp.headers["x-content-type-options"] == "nosniff" and resp.headers["cache-control"] == "no-store"
    assert not [h for h in resp.headers if h.startswith("access-control-")]


def test_the_default_star_does_not_open_mcp_to_any_page(default_gw: InProcessGateway) -> None:
    """/mcp's DNS-rebinding check refuses EVIL: its preflight must not say otherwise."""
    refused = preflight(default_gw, "/mcp", EVIL)
    assert refused.status_code == 204
    assert not [h for h in refused.headers if h.startswith("access-control-allow-")]
    assert default_gw.rpc("ping", headers={"Origin": EVIL}).status_code == 403
    assert "access-control-allow-origin" not in default_gw.rpc("ping", headers={"Origin": EVIL}).headers
    # elsewhere the default allows any page, and a loopback page may use /mcp
    assert preflight(default_gw, "/health", EVIL).headers["access-control-allow-origin"] == "*"
    local = preflight(default_gw, "/mcp", "http://localhost:5173")
    assert local.headers["access-control-allow-origin"] == "*"


def test_listed_origins_are_reflected_with_vary_and_credentials(tmp_path: Path) -> None:
    cors = {"origin": [APP, "https://two.example.com"], "credentials": True, "maxAge": 600}
    with running_inprocess_gateway("--config", config(tmp_path, cors=cors)) as gw:
        ok = preflight(gw, "/mcp", APP)
        assert ok.headers["access-control-allow-origin"] == APP
        assert ok.headers["access-control-allow-credentials"] == "true"
        assert ok.headers["access-control-max-age"] == "600" and ok.headers["vary"] == "Origin"
        # an origin CORS names may use /mcp (allowedOrigins need not repeat it)
        assert gw.rpc("initialize", INIT, headers={"Origin": APP}).status_code == 200
        refused = preflight(gw, "/keys", EVIL)
        assert not [h for h in refused.headers if h.startswith("access-control-allow-")]
        assert refused.headers["vary"] == "Origin"
        plain = gw.client.get("/health")  # no Origin: no Allow-Origin, still Vary
        assert "access-control-allow-origin" not in plain.headers and plain.headers["vary"] == "Origin"
        assert gw.rpc("ping", headers={"Origin": EVIL}).status_code == 403


def test_credentials_with_star_reflect_the_origin_never_star(tmp_path: Path) -> None:
    with running_inprocess_gateway("--config", config(tmp_path, cors={"credentials": True})) as gw:
        resp = gw.client.get("/health", headers={"Origin": EVIL})
        assert resp.headers["access-control-allow-origin"] == EVIL
        assert resp.headers["access-control-allow-credentials"] == "true" and resp.headers["vary"] == "Origin"
        assert "access-control-allow-origin" not in gw.client.get("/health", headers={"Origin": "null"}).headers
        # /mcp still refuses it (not listed by name)
        assert "access-control-allow-origin" not in preflight(gw, "/mcp", EVIL).headers


def test_the_cors_origin_flag_takes_a_comma_list() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--cors-origin", f"{APP}, https://b.example") as gw:
        assert preflight(gw, "/info", "https://b.example").headers["access-control-allow-origin"] == "https://b.example"
        assert "access-control-allow-origin" not in preflight(gw, "/info", EVIL).headers


# --- security and custom headers ------------------------------------------------------------------


def test_security_headers_are_on_every_answer(default_gw: InProcessGateway) -> None:
    answers = [
        default_gw.client.get("/health"),
        default_gw.client.get("/nope"),  # an error
        default_gw.client.get("/keys"),  # 401
        default_gw.rpc("ping"),  # /mcp
        preflight(default_gw, "/mcp"),
    ]
    for resp in answers:
        for name, value in SECURITY.items():
            assert resp.headers[name] == value, (resp.url, name)
        assert resp.headers["cache-control"] == "no-store"


def test_a_cache_control_of_the_answer_is_kept(default_gw: InProcessGateway) -> None:
    key = default_gw.create_key(1)
    session = default_gw.rpc("initialize", INIT, key=key).headers["mcp-session-id"]
    headers = {"X-API-Key": key, "Mcp-Session-Id": session, "Accept": "text/event-stream"}
    with default_gw.client.stream("GET", "/mcp", headers=headers) as stream:
        assert stream.status_code == 200
        assert stream.headers.get_list("cache-control") == ["no-cache"]  # the stream's own, not doubled


def test_the_api_pages_get_a_policy_they_work_under(default_gw: InProcessGateway) -> None:
    page = default_gw.client.get("/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'unsafe-inline' https://cdn.jsdelivr.net" in csp and "connect-src 'self'" in csp
    assert "https://cdn.jsdelivr.net/npm/swagger-ui-dist" in page.text  # what the policy lets it load
    assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"
    assert (
        default_gw.client.get("/openapi.json").headers["content-security-policy"] == SECURITY["content-security-policy"]
    )


def test_custom_headers_are_on_every_answer_and_replace_built_in_ones(tmp_path: Path) -> None:
    custom = {"X-Team": "search", "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "no-cache"}
    args = (
        "--config",
        config(tmp_path, customHeaders=custom),
        "--header",
        "X-Env:a,Strict-Transport-Security:max-age=60",
    )
    with running_inprocess_gateway(*args, "--header", "X-Second:b, c") as gw:
        for resp in (gw.client.get("/health"), gw.client.get("/nope"), gw.rpc("ping"), preflight(gw, "/mcp")):
            h = resp.headers
            assert h["x-team"] == "search" and h["x-env"] == "a" and h["x-second"] == "b, c"
            assert h["strict-transport-security"] == "max-age=60"
            assert h.get_list("x-frame-options") == ["SAMEORIGIN"]
            assert h.get_list("cache-control") == ["no-cache"] and h["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Request-Id": "mine"}, "set by the gateway"),
        ({"Access-Control-Allow-Origin": "*"}, "set by the gateway"),
        ({"Content-Length": "1"}, "set by the gateway"),
        ({"Bad Name": "x"}, "not a valid header name"),
        ({"X-Split": "a\r\nX-Injected: 1"}, "no CR, LF"),
        ({"X-A": "1", "x-a": "2"}, "given twice"),
    ],
)
def test_a_bad_custom_header_stops_the_start(tmp_path: Path, headers: dict[str, str], message: str) -> None:
    with pytest.raises(RuntimeError, match="gateway did not start") as info:
        running_inprocess_gateway("--config", config(tmp_path, customHeaders=headers)).__enter__()
    assert "customHeaders" in str(info.value) and message in str(info.value)


def test_a_bad_header_flag_stops_the_start() -> None:
    with pytest.raises(RuntimeError, match="expected Name:value"):
        running_inprocess_gateway("--server", ECHO_COMMAND, "--header", "no colon here").__enter__()


# --- rate limits outside /mcp ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(address_rate, "time", fake)
    return fake


def test_public_endpoints_are_limited_per_address(tmp_path: Path, clock: Clock) -> None:
    with running_inprocess_gateway("--config", config(tmp_path, publicRateLimit=3)) as gw:
        for path in ("/health", "/info", "/.well-known/mcp.json"):
            assert gw.client.get(path).status_code == 200
        refused = gw.client.get("/pricing")
        assert refused.status_code == 429
        assert refused.json() == {
            "error": "Too many requests. Try again later.",
            "requestId": refused.headers["x-request-id"],
        }
        assert refused.headers["retry-after"] == "60" and refused.headers["x-frame-options"] == "DENY"
        assert gw.client.get("/metrics").status_code == 200  # not a counted endpoint
        assert preflight(gw, "/health").status_code == 204  # nor a preflight
        assert gw.client.get("/keys", headers=gw.admin()).status_code == 200  # the admin API has its own
        clock.now += 45
        assert gw.client.get("/").headers["retry-after"] == "15"
        clock.now += 15  # a new window
        assert gw.client.get("/health").status_code == 200


def test_behind_a_trusted_proxy_each_client_has_its_own_count(tmp_path: Path, clock: Clock) -> None:
    with running_inprocess_gateway("--config", config(tmp_path, publicRateLimit=1, trustedProxies=["127.0.0.1"])) as gw:
        assert gw.client.get("/health", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 200
        assert gw.client.get("/health", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 429
        assert gw.client.get("/health", headers={"X-Forwarded-For": "203.0.113.6"}).status_code == 200
    with running_inprocess_gateway("--config", config(tmp_path, publicRateLimit=1)) as gw:
        assert gw.client.get("/health", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 200
        # not from a trusted proxy: the header is not believed, the socket's address is counted
        assert gw.client.get("/health", headers={"X-Forwarded-For": "203.0.113.6"}).status_code == 429


def test_zero_turns_the_public_limit_off(tmp_path: Path) -> None:
    with running_inprocess_gateway("--config", config(tmp_path, publicRateLimit=0)) as gw:
        assert all(gw.client.get("/health").status_code == 200 for _ in range(20))


def test_the_admin_api_is_limited_per_address(tmp_path: Path, clock: Clock) -> None:
    with running_inprocess_gateway("--config", config(tmp_path), "--admin-rate-limit", "2") as gw:
        assert gw.client.get("/keys", headers=gw.admin()).status_code == 200
        assert gw.client.get("/keys", headers={"X-Admin-Key": "wrong-key-0123456789"}).status_code == 401
        refused = gw.client.get("/status", headers=gw.admin())  # a correct key counts the same
        assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
        body = refused.json()
        assert body["error"] == "Too many admin requests. Try again later." and body["requestId"]
        assert gw.client.get("/health").status_code == 200  # public endpoints are not admin requests
        assert preflight(gw, "/keys").status_code == 204
        assert not gw.events("admin.auth_throttled")  # not the failed-auth throttle
        clock.now += 60
        assert gw.client.get("/keys", headers=gw.admin()).status_code == 200


def test_new_sessions_beyond_the_limit_get_the_references_message(tmp_path: Path) -> None:
    with running_inprocess_gateway("--config", config(tmp_path, sessionRateLimit=1)) as gw:
        assert gw.rpc("initialize", INIT).status_code == 200
        refused = gw.rpc("initialize", INIT)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["message"] == "Too many sessions created. Try again later."
