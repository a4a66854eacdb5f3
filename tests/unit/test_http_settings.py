"""Issue 12's HTTP settings: `cors`, `customHeaders`, `publicRateLimit`, `adminRateLimit` (their
reference defaults, the flag and env forms, refusals at start), and the per-address counter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from paygate.cli import app as cli_app
from paygate.config import ConfigError, load_settings
from paygate.config_http import parse_header_spec
from paygate.core.address_rate import AddressRate
from paygate.http.cors import CorsPolicy, mcp_origins
from paygate.validation import diagnose


def test_the_reference_defaults() -> None:
    s = load_settings({"server": "x"}, environ={})
    assert s.cors.origin == ["*"] and not s.cors.credentials and s.cors.max_age == 86_400
    assert s.custom_headers == {} and s.public_rate_limit == 300 and s.admin_rate_limit == 120
    assert s.session_rate_limit == 60


def test_env_and_flag_forms() -> None:
    env = {
        "PAYGATE_CORS_ORIGIN": "https://A.example.com/, https://b.example.com",
        "PAYGATE_CUSTOM_HEADERS": "X-Frame-Options:DENY,X-Content-Type-Options:nosniff",
        "PAYGATE_PUBLIC_RATE_LIMIT": "10",
        "PAYGATE_ADMIN_RATE_LIMIT": "0",
    }
    s = load_settings({"server": "x"}, environ=env)
    assert s.cors.origin == ["https://a.example.com", "https://b.example.com"]
    assert s.custom_headers == {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"}
    assert s.public_rate_limit == 10 and s.admin_rate_limit == 0
    # the flag (a later layer) adds to the environment's headers; the same name, any case, replaces it
    s = load_settings({"server": "x", "customHeaders": ["x-frame-options:SAMEORIGIN", "X-B:1"]}, environ=env)
    assert s.custom_headers == {"X-Content-Type-Options": "nosniff", "x-frame-options": "SAMEORIGIN", "X-B": "1"}


def test_a_header_value_may_hold_commas() -> None:
    assert parse_header_spec("Cache-Control:no-cache, no-store,X-A:1") == {
        "Cache-Control": "no-cache, no-store",
        "X-A": "1",
    }
    assert parse_header_spec(["X-A:a:b", "X-B:"]) == {"X-A": "a:b", "X-B": ""}
    with pytest.raises(ValueError, match="expected Name:value"):
        parse_header_spec("nothing")
    with pytest.raises(ConfigError, match="--header"):
        load_settings({"server": "x", "customHeaders": "nothing"}, environ={})


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Request-Id": "a"},
        {"x-paygate-version": "1"},
        {"Vary": "Accept"},
        {"Access-Control-Allow-Credentials": "true"},
        {"Transfer-Encoding": "chunked"},
        {"X:Y": "a"},
        {"X-A": "a\nb"},
        {"X-A": "caf\u00e9"},
        {"X-A": "x" * 5000},
        {f"X-{i}": "1" for i in range(51)},
    ],
)
def test_bad_custom_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        load_settings({"server": "x", "customHeaders": headers}, environ={})


@pytest.mark.parametrize("origin", ["", "ftp://x.example", "https://x.example/path", "not an origin"])
def test_bad_cors_origins_are_refused(origin: str) -> None:
    with pytest.raises(ValidationError):
        load_settings({"server": "x", "cors": {"origin": origin}}, environ={})


def test_wrap_stops_on_a_bad_header_with_exit_2() -> None:
    result = CliRunner().invoke(cli_app, ["wrap", "--server", "x", "--header", "X-Request-Id:mine"])
    assert result.exit_code == 2
    assert "customHeaders" in result.output and "set by the gateway" in result.output


def test_validate_reports_a_bad_header_and_credentials_with_star(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"serverCommand": "x", "customHeaders": {"Content-Type": "text/plain"}}))
    result = CliRunner().invoke(cli_app, ["validate", "--config", str(path)])
    assert result.exit_code == 1 and "customHeaders" in result.output
    path.write_text(json.dumps({"serverCommand": "x", "cors": {"credentials": True}, "adminRateLimit": 5}))
    diags = {d.field: d for d in diagnose(str(path), environ={})}
    assert diags["cors.credentials"].level == "warning" and "adminRateLimit" not in diags


def test_cors_on_mcp_needs_both_checks() -> None:
    policy = CorsPolicy(["*"], False, 60, mcp_origins([], ["*"]))
    assert policy.allow(b"https://x.example", mcp=False) == ((b"access-control-allow-origin", b"*"),)
    assert policy.allow(b"https://x.example", mcp=True) == ()
    assert policy.allow(b"http://127.0.0.1:8080", mcp=True) != ()
    listed = CorsPolicy(["https://x.example"], True, 60, mcp_origins(["https://y.example"], ["https://x.example"]))
    assert listed.allow(b"https://x.example", mcp=True)[0] == (b"access-control-allow-origin", b"https://x.example")
    assert listed.allow(b"https://y.example", mcp=True) == ()  # /mcp would take it, CORS does not list it


def test_the_address_counter_resets_and_stays_bounded() -> None:
    rate = AddressRate(2, max_addresses=3)
    assert rate.retry_after("10.0.0.1", 100.0) is None and rate.retry_after("10.0.0.1", 110.0) is None
    assert rate.retry_after("10.0.0.1", 130.5) == 30
    assert rate.retry_after("10.0.0.1", 160.0) is None  # a new window
    for n in range(10):
        rate.retry_after(f"10.0.1.{n}", 161.0)
    assert rate.size == 3  # addresses beyond the table's size are not counted
    rate.retry_after("10.0.2.1", 221.0)
    assert rate.size == 1  # emptied with each window


def test_ipv6_addresses_count_per_64() -> None:
    rate = AddressRate(1)
    assert rate.retry_after("2001:db8:1:2::1", 0.5) is None
    assert rate.retry_after("2001:db8:1:2:ffff::9", 1.0) is not None  # same /64
    assert rate.retry_after("2001:db8:1:3::1", 1.0) is None
