"""The reference's documented names and values are accepted (issue 12): its flags, env vars and config keys
start the gateway; what this version does not act on is reported, never fatal."""

from __future__ import annotations

import logging

import typer

from paygate import logs
from paygate.cli import app as cli_app
from paygate.cli import settings_from_wrap_args
from paygate.config import load_settings, resolve_sources
from paygate.validation import ignored_settings, start_warning

REFERENCE_CONFIG = {
    "serverCommand": "x",
    "discoveryMode": "dynamic",
    "logLevel": "warn",
    "toolPricing": {"search": {"creditsPerCall": 2, "timeoutMs": 5000, "cacheTtlSeconds": 60}},
    "globalQuota": {"dailyCallLimit": 10, "hourlyCallLimit": 5, "hourlyCreditLimit": 50},
    "webhookFilters": [{"id": "f1", "name": "ops", "events": ["*"], "url": "https://hooks.example.com/x"}],
    "stripeWebhookSecret": "whsec_abc",
    "adminRateLimit": 120,
    "customHeaders": {"X-Team": "a"},
    "notAKey": 1,
}


def test_the_references_config_names_and_values_are_accepted() -> None:
    s = load_settings(REFERENCE_CONFIG)
    assert s.discovery == "dynamic" and s.log_level == "warning"
    assert s.tool_pricing["search"].credits_per_call == 2 and s.tool_pricing["search"].timeout_ms == 5000
    assert s.global_quota is not None and s.global_quota.daily_call_limit == 10
    assert s.webhook_filters[0].id == "f1" and s.stripe_webhook_secret == "whsec_abc"


def test_what_is_not_acted_on_is_reported_field_by_field() -> None:
    fields = {d.field: d.message for d in ignored_settings(REFERENCE_CONFIG)}
    assert "toolPricing.search.timeoutMs" not in fields  # enforced now (docs/traffic.md)
    assert "toolPricing.search.cacheTtlSeconds" not in fields  # the response cache's (docs/traffic.md)
    assert "globalQuota.hourlyCallLimit" not in fields  # enforced now: every key's hourly spend caps
    assert "globalQuota.hourlyCreditLimit" not in fields
    assert fields["notAKey"] == "unknown key (ignored)"
    assert "adminRateLimit" not in fields and "customHeaders" not in fields  # enforced now
    assert "stripeWebhookSecret" not in fields  # enforced now: POST /stripe/webhook (docs/payments.md)
    assert "discoveryMode" not in fields and "logLevel" not in fields  # understood, so nothing to say
    line = start_warning({**REFERENCE_CONFIG, "openApiSpec": "spec.json"})
    assert line is not None and line.startswith("warning: not enforced by this version yet: openApiSpec")
    assert "unknown keys ignored: notAKey" in line
    assert start_warning({"serverCommand": "x"}) is None


def test_the_reference_env_names_map_onto_the_settings() -> None:
    env = {"PAYGATE_DISCOVERY_MODE": "dynamic", "PAYGATE_LOG_LEVEL": "SILENT", "PAYGATE_ADMIN_RATE_LIMIT": "60"}
    s = load_settings({"server": "x"}, environ=env)
    assert s.discovery == "dynamic" and s.log_level == "silent"
    assert resolve_sources({}, None, env)["adminRateLimit"] == "60"
    # our own name wins over the reference's when a layer has both
    assert load_settings({"server": "x", "discovery": "static", "discoveryMode": "dynamic"}).discovery == "static"


def test_the_references_flags_parse_and_are_reported() -> None:
    argv = [
        "--server",
        "x",
        "--redis-url",
        "redis://127.0.0.1:6379/0",
        "--stripe-secret",
        "whsec_x",
        "--cors-origin",
        "https://app.example.com",
        "--header",
        "X-A:1",
        "--admin-rate-limit",
        "100",
        "--request-timeout",
        "20000",
    ]
    s = settings_from_wrap_args(argv)
    assert s.redis_url == "redis://127.0.0.1:6379/0" and s.request_timeout_ms == 20000
    flags = {"redisUrl": s.redis_url, "stripeSecret": "whsec_x", "corsOrigin": "https://app.example.com"}
    raw = resolve_sources({**flags, "customHeaders": "X-A:1", "adminRateLimit": 100, "server": "x"}, None, {})
    assert raw["cors"] == {"origin": "https://app.example.com"}
    line = start_warning(raw)
    assert line is None  # redisUrl, stripeSecret, cors, customHeaders, adminRateLimit: all enforced now
    assert s.cors.origin == ["https://app.example.com"] and s.custom_headers == {"X-A": "1"}
    assert s.admin_rate_limit == 100


def test_dry_run_can_come_from_the_environment() -> None:
    wrap = typer.main.get_command(cli_app).commands["wrap"]  # type: ignore[attr-defined]
    dry_run = next(p for p in wrap.params if p.name == "dry_run")
    assert dry_run.envvar == "PAYGATE_DRY_RUN"


def test_silent_logs_nothing() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        logs.configure("text", "silent")
        assert not logging.getLogger("paygate").isEnabledFor(logging.CRITICAL)
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)


def test_version_flags_print_the_version() -> None:
    from typer.testing import CliRunner

    from paygate import __version__

    for flag in ("--version", "-v"):
        result = CliRunner().invoke(cli_app, [flag])
        assert result.exit_code == 0 and result.output.strip() == __version__, result.output


def test_help_shows_flags_as_flags() -> None:
    """The rich help table printed `<bool>` beside every flag, as if `--shadow` took a value."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli_app, ["wrap", "--help"])
    assert result.exit_code == 0
    assert "--shadow" in result.output and "--refund-on-failure" in result.output
    assert "<bool>" not in result.output


def test_the_references_programmatic_settings_are_typed_and_reported_not_unknown() -> None:
    """Settings the reference takes only programmatically: accepted under its names and type-checked;
    its traffic controls, global tool timeout and geo header apply."""
    import pytest
    from pydantic import ValidationError

    raw = {
        "serverCommand": "x",
        "cacheTtlSeconds": 30,
        "circuitBreakerThreshold": 5,
        "mirror": {"url": "https://m.example.com/mcp", "percentage": 10},
        "x402": {"payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"},  # enforced now (docs/x402.md)
        "toolTimeoutMs": 2500,
        "geoCountryHeader": "X-Country",
        "cache": {"ttl": 1},  # not a reference name: unknown
    }
    s = load_settings(raw)
    assert s.cache_ttl_seconds == 30 and s.mirror is not None
    assert (s.mirror.url, s.mirror.percentage, s.mirror.timeout_ms) == ("https://m.example.com/mcp", 10, 5000)
    assert s.tool_timeout_seconds == 2.5 and s.country_header == "X-Country"
    fields = {d.field: d.message for d in ignored_settings(raw)}
    for enforced in ("cacheTtlSeconds", "circuitBreakerThreshold", "mirror"):  # docs/traffic.md
        assert enforced not in fields, enforced
    assert "x402" not in fields and s.x402 is not None and s.x402.credits_per_dollar == 100
    assert fields["cache"] == "unknown key (ignored)"
    assert "toolTimeoutMs" not in fields and "geoCountryHeader" not in fields
    for wrong in (
        {"cacheTtlSeconds": "soon"},
        {"mirror": "https://m"},
        {"maxConcurrentPerKey": -1},
        {"x402": {"enabled": True}},  # no payTo
        {"x402": {"payTo": "0xabc", "network": "base"}},  # not CAIP-2
        {"x402": {"payTo": "0xabc", "creditsPerDollar": 0}},
        {"x402": {"payTo": "0xabc", "facilitatorUrl": "ftp://f"}},
        {"x402": {"payTo": "0xabc", "paymentTtlSeconds": 60, "maxTimeoutSeconds": 120}},
        {"x402": {"payTo": "0xabc", "payto": "typo"}},
    ):
        with pytest.raises(ValidationError):
            load_settings({"serverCommand": "x", **wrong})
