"""`paygate-mcp validate`: diagnostics (errors and warnings, each with a field path)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from paygate.alerts.rules import RuleError, rules_from_config
from paygate.config import ConfigError, Settings, resolve_sources
from paygate.config_later import LaterSettings
from paygate.webhooks.ssrf import configured_url_problems

# Keys the reference's config files carry that later issues implement; accepted with a warning.
LATER_KEYS = frozenset(
    {
        *(f.alias or name for name, f in LaterSettings.model_fields.items()),
    }
    - {"x402"}  # enforced (config_x402.py)
)
# Nested fields of the reference's that later issues enforce: accepted, reported like LATER_KEYS.
LATER_TOOL_FIELDS: tuple[str, ...] = ()  # none now: toolPricing[t].cacheTtlSeconds is the response cache's
LATER_QUOTA_FIELDS: tuple[str, ...] = ()  # none now: the hourly limits are the spend caps' (config_rules.py)
NOT_ENFORCED = "accepted but not enforced by this version yet"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    level: str  # "error" | "warning"
    field: str
    message: str


def _known_keys() -> set[str]:
    """Settings' keys, and the reference's names read as one of them (config.normalise)."""
    return {f.alias or name for name, f in Settings.model_fields.items()} | {
        "discoveryMode",
        "geoCountryHeader",
        "toolTimeoutMs",
    }


def ignored_settings(raw: dict[str, Any]) -> list[Diagnostic]:
    """Warnings for what the gateway accepts and does not act on: keys of later features (set to
    something), the reference's nested fields a later issue enforces, and unknown keys."""
    out: list[Diagnostic] = []
    known = _known_keys()
    for key in sorted(raw):
        if key in LATER_KEYS and raw[key] not in (None, "", [], {}):
            out.append(Diagnostic("warning", key, NOT_ENFORCED))
        elif key not in known and key not in LATER_KEYS:
            out.append(Diagnostic("warning", key, "unknown key (ignored)"))
    pricing = raw.get("toolPricing")
    for tool, entry in sorted(pricing.items()) if isinstance(pricing, dict) else ():
        for name in LATER_TOOL_FIELDS:
            if isinstance(entry, dict) and entry.get(name) is not None:
                out.append(Diagnostic("warning", f"toolPricing.{tool}.{name}", NOT_ENFORCED))
    quota = raw.get("globalQuota")
    for name in LATER_QUOTA_FIELDS:
        if isinstance(quota, dict) and quota.get(name):
            out.append(Diagnostic("warning", f"globalQuota.{name}", NOT_ENFORCED))
    return out


def start_warning(raw: dict[str, Any]) -> str | None:
    """The one line `wrap` prints at start about settings it accepts and ignores (None: nothing)."""
    ignored = ignored_settings(raw)
    later = [d.field for d in ignored if d.message == NOT_ENFORCED]
    unknown = [d.field for d in ignored if d.message != NOT_ENFORCED]
    parts = ([f"not enforced by this version yet: {', '.join(later)}"] if later else []) + (
        [f"unknown keys ignored: {', '.join(unknown)}"] if unknown else []
    )
    return f"warning: {'; '.join(parts)} (see paygate-mcp validate)" if parts else None


def diagnose(
    config_path: str | None, flags: dict[str, Any] | None = None, environ: dict[str, str] | None = None
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    try:
        raw = resolve_sources(flags or {}, config_path, environ)
    except ConfigError as exc:
        return [Diagnostic("error", "", str(exc))]
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(root)"
            out.append(Diagnostic("error", field, err["msg"].removeprefix("Value error, ")))
        return out
    out += ignored_settings(raw)
    if not settings.has_backend:
        out.append(Diagnostic("error", "serverCommand", "no backend: set serverCommand, remoteUrl, or servers"))
    for problem in configured_url_problems(
        settings.webhook_url, [f.url for f in settings.webhook_filters], settings.webhook_allow_private
    ):
        out.append(Diagnostic("error", problem.split(" ", 1)[0], problem))
    try:
        rules_from_config(settings.alert_rules)
    except RuleError as exc:
        out.append(Diagnostic("error", "alertRules", str(exc)))
    if settings.shadow_mode:
        out.append(Diagnostic("warning", "shadowMode", "Shadow mode is enabled. Payment will not be enforced."))
    if settings.global_rate_limit_per_min == 0:
        out.append(Diagnostic("warning", "globalRateLimitPerMin", "0 means no rate limit"))
    if "countryHeader" in raw and not settings.trusted_proxies:
        out.append(
            Diagnostic(
                "warning",
                "countryHeader",
                "the country header is believed only from trustedProxies; "
                "without them, keys with allowed countries refuse every call",
            )
        )
    if settings.cors.credentials and settings.cors.any_origin:
        out.append(
            Diagnostic(
                "warning",
                "cors.credentials",
                "with origin '*', credentials reflect the caller's Origin: every site may send credentialed requests",
            )
        )
    if settings.in_memory:
        out.append(Diagnostic("warning", "stateFile", "in-memory state: keys and credits are lost on exit"))
    for name, pricing in settings.tool_pricing.items():
        if pricing.credits_per_call == 0 and not pricing.credits_per_kb_input:
            out.append(Diagnostic("warning", f"toolPricing.{name}", "tool is free"))
    return out


def report(diags: list[Diagnostic]) -> dict[str, Any]:
    errors = sum(1 for d in diags if d.level == "error")
    return {
        "valid": errors == 0,
        "diagnostics": [asdict(d) for d in diags],
        "errors": errors,
        "warnings": len(diags) - errors,
    }


def format_text(diags: list[Diagnostic]) -> str:
    errors = [d for d in diags if d.level == "error"]
    warnings = [d for d in diags if d.level == "warning"]
    lines: list[str] = []
    if errors:
        lines.append(f"✗ {len(errors)} error(s):")
        lines += [f"  ERROR [{d.field}] {d.message}" for d in errors]
    if warnings:
        lines.append(f"⚠ {len(warnings)} warning(s):")
        lines += [f"  WARN [{d.field}] {d.message}" for d in warnings]
    if not errors:
        lines.append("✓ config is valid")
    return "\n".join(lines)
