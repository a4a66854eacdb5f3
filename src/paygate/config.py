"""One Settings model, filled from defaults < config file < PAYGATE_* env < CLI flags.

Field names are the reference's camelCase config-file keys (as aliases); the
env vars and flags are mapped onto those keys here, so each source is a plain
dict and precedence is a dict merge.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from paygate.config_auth import AuthSettings
from paygate.config_content import ContentSettings
from paygate.config_events import AlertRuleConfig, WebhookFilterConfig, WebhookReplaySettings
from paygate.config_http import HttpSettings, parse_header_spec
from paygate.config_later import LaterSettings
from paygate.config_limits import GlobalQuota, LimitSettings
from paygate.config_plugins import PluginSettings
from paygate.config_redis import RedisSettings
from paygate.config_rules import RulesSettings
from paygate.config_sections import ConfigModel, ExpiryScannerConfig, ServerConfig, ToolPricingConfig
from paygate.config_stripe import StripeSettings
from paygate.config_traffic import TrafficSettings

DEFAULT_PORT = 3402
DEFAULT_STATE_FILE = "~/.paygate/paygate.db"
IN_MEMORY = ":memory:"
DEFAULT_FREE_METHODS = (
    "initialize", "notifications/initialized", "initialized", "ping", "tools/list", "resources/list", "prompts/list",
    "resources/templates/list",
    # the reference's: MCP tasks (they still need a key: each key sees its own) and elicitation
    "tasks/get", "tasks/result", "tasks/list", "tasks/cancel", "elicitation/create",
)  # fmt: skip


class Settings(
    ConfigModel,
    LimitSettings,
    HttpSettings,
    RedisSettings,
    AuthSettings,
    StripeSettings,
    TrafficSettings,
    PluginSettings,
    ContentSettings,
    RulesSettings,
    WebhookReplaySettings,
    LaterSettings,
):
    """Everything the gateway is configured with; groups of it in config_<group>.py, which it inherits.
    Unknown keys are ignored here and reported by `validate`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    server_command: str | None = None
    server_args: list[str] = Field(default_factory=list)
    remote_url: str | None = None
    servers: list[ServerConfig] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    name: str = Field(default="PayGate MCP Server", max_length=200)
    default_credits_per_call: int = Field(default=1, ge=0)
    global_rate_limit_per_min: int = Field(default=60, ge=0)
    tool_pricing: dict[str, ToolPricingConfig] = Field(default_factory=dict)
    import_keys: dict[str, int] = Field(default_factory=dict)
    shadow_mode: bool = False
    refund_on_failure: bool = False
    # MCP tasks: a cancelled task keeps its charge (settled as a failed call) instead of a full refund
    bill_task_creation: bool = False
    admin_key: str | None = Field(default=None, min_length=16)
    state_file: str = DEFAULT_STATE_FILE
    sqlite_sync: Literal["NORMAL", "FULL"] = "NORMAL"  # FULL: a commit also survives a power loss (slower)
    free_methods: list[str] = Field(default_factory=lambda: list(DEFAULT_FREE_METHODS))
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_state_upload_bytes: int = Field(default=64 * 1_048_576, ge=1024, le=1024 * 1_048_576)
    tool_timeout_seconds: float = Field(default=300.0, gt=0)
    # Key policy
    global_quota: GlobalQuota | None = None
    trusted_proxies: list[str] = Field(default_factory=list, max_length=100)
    allowed_origins: list[str] = Field(default_factory=list, max_length=100)  # browser origins for /mcp
    expiry_scanner: ExpiryScannerConfig = Field(default_factory=ExpiryScannerConfig)
    country_header: str = Field(default="CF-IPCountry", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
    # Events and observability (config_events.py)
    webhook_url: str | None = Field(default=None, max_length=2048)
    webhook_secret: str | None = Field(default=None, min_length=1, max_length=256)
    webhook_max_retries: int = Field(default=5, ge=0, le=20)
    webhook_filters: list[WebhookFilterConfig] = Field(default_factory=list, max_length=100)
    webhook_allow_private: bool = False  # deliver to loopback / private / link-local addresses
    webhook_batch_size: int = Field(default=10, ge=1, le=100)
    webhook_flush_seconds: float = Field(default=5.0, gt=0, le=3600)
    webhook_retry_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    alert_rules: list[AlertRuleConfig] = Field(default_factory=list, max_length=50)
    audit_max_entries: int = Field(default=10_000, ge=100, le=10_000_000)
    audit_max_age_days: float = Field(default=30, gt=0, le=3650)
    audit_gate_events: bool = False  # gate.allow / gate.deny in the durable audit log too (one row per call)
    request_log_size: int = Field(default=5000, ge=0, le=1_000_000)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error", "silent"] = "info"  # "warn" is read as "warning"
    discovery: Literal["static", "dynamic"] = "static"  # dynamic: three meta-tools in tools/list (mcp/discovery.py)
    watch_config: bool = False  # reload when the config file changes (admin/reload.py, docs/reload.md)
    # What load_settings merged: a hot reload (admin/reload.py) merges a new file under the same env and flags.
    _sources: ConfigSources | None = PrivateAttr(default=None)

    @field_validator("import_keys")
    @classmethod
    def _credits_not_negative(cls, v: dict[str, int]) -> dict[str, int]:
        for key, credits in v.items():
            if credits < 0:
                raise ValueError(f"importKeys[{key[:7]}…]: credits must be >= 0")
            if len(key) < 8:
                raise ValueError("importKeys: keys must be at least 8 characters")
        return v

    @field_validator("trusted_proxies", "allowed_origins", mode="before")
    @classmethod
    def _entry_lists(cls, v: Any, info: ValidationInfo) -> Any:
        """A list, or the flag / env form "a,b"; each entry checked and normalised."""
        from paygate.core.netaddr import normalise_entry
        from paygate.core.origins import normalise_origin

        normalise, key = (
            (normalise_entry, "trustedProxies")
            if info.field_name == "trusted_proxies"
            else (normalise_origin, "allowedOrigins")
        )
        if isinstance(v, str):
            v = [p for p in (part.strip() for part in v.split(",")) if p]
        if not isinstance(v, list):
            return v
        try:
            return [normalise(str(p)) for p in v]
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from exc

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, v: Any) -> Any:
        """Any case; the reference's `warn` is `warning`."""
        if not isinstance(v, str):
            return v
        lowered = v.strip().lower()
        return "warning" if lowered == "warn" else lowered

    @field_validator("sqlite_sync", mode="before")
    @classmethod
    def _sync_mode(cls, v: Any) -> Any:
        """Case-insensitive, like SQLite's own PRAGMA."""
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("remote_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("remoteUrl must start with http:// or https://")
        return v

    @model_validator(mode="after")
    def _one_backend_mode(self) -> Settings:
        if self.server_command and self.remote_url:
            raise ValueError("use --server or --remote-url, not both")
        if self.servers and (self.server_command or self.remote_url):
            raise ValueError("'servers' (multi-server mode) excludes serverCommand and remoteUrl")
        prefixes = [s.prefix for s in self.servers]
        if len(prefixes) != len(set(prefixes)):
            raise ValueError("servers: prefixes must be unique")
        return self

    @property
    def has_backend(self) -> bool:
        return bool(self.server_command or self.remote_url or self.servers)

    @property
    def in_memory(self) -> bool:
        return self.state_file == IN_MEMORY


# --- sources -----------------------------------------------------------------

ENV_TO_KEY: dict[str, str] = {
    "PAYGATE_SERVER": "server",
    "PAYGATE_REMOTE_URL": "remoteUrl",
    "PAYGATE_HOST": "host",
    "PAYGATE_PORT": "port",
    "PAYGATE_PRICE": "defaultCreditsPerCall",
    "PAYGATE_RATE_LIMIT": "globalRateLimitPerMin",
    "PAYGATE_NAME": "name",
    "PAYGATE_SHADOW": "shadowMode",
    "PAYGATE_ADMIN_KEY": "adminKey",
    "PAYGATE_TOKEN_SECRET": "tokenSecret",
    "PAYGATE_STATE_FILE": "stateFile",
    "PAYGATE_SQLITE_SYNC": "sqliteSync",
    "PAYGATE_WEBHOOK_URL": "webhookUrl",
    "PAYGATE_WEBHOOK_SECRET": "webhookSecret",
    "PAYGATE_WEBHOOK_RETRIES": "webhookMaxRetries",
    "PAYGATE_REFUND_ON_FAILURE": "refundOnFailure",
    "PAYGATE_REDIS_URL": "redisUrl",
    "PAYGATE_REDIS_PREFIX": "redisPrefix",
    "PAYGATE_TOOL_PRICE": "toolPrice",
    "PAYGATE_IMPORT_KEY": "importKey",
    "PAYGATE_STRIPE_SECRET": "stripeSecret",
    "PAYGATE_DISCOVERY": "discovery",
    "PAYGATE_TRUSTED_PROXIES": "trustedProxies",
    "PAYGATE_ALLOWED_ORIGINS": "allowedOrigins",
    "PAYGATE_COUNTRY_HEADER": "countryHeader",
    "PAYGATE_WEBHOOK_ALLOW_PRIVATE": "webhookAllowPrivate",
    "PAYGATE_TRAFFIC_ALLOW_PRIVATE": "trafficAllowPrivate",
    "PAYGATE_LOG_FORMAT": "logFormat",
    "PAYGATE_LOG_LEVEL": "logLevel",
    "PAYGATE_REQUEST_TIMEOUT": "requestTimeoutMs",
    "PAYGATE_HEADERS_TIMEOUT": "headersTimeoutMs",
    "PAYGATE_KEEPALIVE_TIMEOUT": "keepAliveTimeoutMs",
    "PAYGATE_MAX_REQUESTS_PER_SOCKET": "maxRequestsPerSocket",
    "PAYGATE_DISCOVERY_MODE": "discoveryMode",
    "PAYGATE_CORS_ORIGIN": "corsOrigin",
    "PAYGATE_CUSTOM_HEADERS": "customHeaders",
    "PAYGATE_ADMIN_RATE_LIMIT": "adminRateLimit",
    "PAYGATE_PUBLIC_RATE_LIMIT": "publicRateLimit",
    "PAYGATE_STRIPE_WEBHOOK_SECRET": "stripeWebhookSecret",
    "PAYGATE_PLUGINS": "plugins",
    "PAYGATE_WATCH_CONFIG": "watchConfig",
}
_BOOL_KEYS = {"shadowMode", "refundOnFailure", "webhookAllowPrivate", "trafficAllowPrivate", "watchConfig"}


class ConfigError(ValueError):
    """A source could not be read or a value could not be parsed."""


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"not a boolean: {value!r}")


def parse_pairs(spec: str, what: str) -> dict[str, int]:
    """'a:1,b:5' (or 'a=1') → {'a': 1, 'b': 5}. The last ':' separates, so prefixed names work."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        sep = ":" if ":" in part else "="
        name, _, number = part.rpartition(sep)
        if not name or not number.strip().isdigit():
            raise ConfigError(f"{what}: expected name:credits, got {part!r}")
        out[name.strip()] = int(number)
    return out


def split_command(command: str) -> tuple[str, list[str]]:
    """Split like a POSIX shell would, so quoted arguments survive."""
    try:
        parts = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"--server: {exc}") from exc
    if not parts:
        raise ConfigError("--server is empty")
    return parts[0], parts[1:]


def load_file(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    return data


def from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for var, key in ENV_TO_KEY.items():
        if var in env:
            raw = env[var]
            out[key] = parse_bool(raw) if key in _BOOL_KEYS else raw
    return out


def normalise(layer: dict[str, Any]) -> dict[str, Any]:
    """Turn flag-style entries (server, toolPrice, importKey, corsOrigin) and the reference's other names
    (discoveryMode, geoCountryHeader, toolTimeoutMs) into config-file keys."""
    out = dict(layer)
    if "discoveryMode" in out:
        out.setdefault("discovery", out.pop("discoveryMode"))
    if "geoCountryHeader" in out:
        out.setdefault("countryHeader", out.pop("geoCountryHeader"))
    if "toolTimeoutMs" in out:  # the reference's global tool timeout, applied by toolTimeoutSeconds
        ms = out.pop("toolTimeoutMs")
        out.setdefault("toolTimeoutSeconds", ms / 1000 if isinstance(ms, int | float) and ms > 0 else ms)
    if "corsOrigin" in out:
        cors = out.get("cors")
        out["cors"] = {**(cors if isinstance(cors, dict) else {}), "origin": out.pop("corsOrigin")}
    if isinstance(out.get("customHeaders"), str | list):
        try:
            out["customHeaders"] = parse_header_spec(out["customHeaders"])
        except ValueError as exc:
            raise ConfigError(f"--header / PAYGATE_CUSTOM_HEADERS: {exc}") from exc
    if isinstance(out.get("plugins"), str):  # PAYGATE_PLUGINS: a comma list
        out["plugins"] = [p.strip() for p in out["plugins"].split(",") if p.strip()]
    if "server" in out:
        command, args = split_command(str(out.pop("server")))
        out["serverCommand"], out["serverArgs"] = command, args
    if "toolPrice" in out:
        prices = parse_pairs(str(out.pop("toolPrice")), "--tool-price")
        out["toolPricing"] = {name: {"creditsPerCall": c} for name, c in prices.items()}
    if "importKey" in out:
        spec = out.pop("importKey")
        specs = spec if isinstance(spec, list) else [spec]
        out["importKeys"] = {}
        for item in specs:
            out["importKeys"].update(parse_pairs(str(item), "--import-key"))
    return out


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win; toolPricing, importKeys and customHeaders merge per entry; plugins add up
    (the config file's, then PAYGATE_PLUGINS', then --plugin's: each named once)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "plugins" and isinstance(merged.get(key), list) and isinstance(value, list):
                merged[key] = [*merged[key], *(p for p in value if p not in merged[key])]
                continue
            if key in {"toolPricing", "importKeys", "customHeaders"} and isinstance(merged.get(key), dict):
                combined = dict(merged[key])
                for name, entry in value.items():
                    if key == "customHeaders":  # header names are case-insensitive: the later spelling wins
                        combined = {k: v for k, v in combined.items() if k.lower() != str(name).lower()}
                    if key == "toolPricing" and isinstance(combined.get(name), dict):
                        combined[name] = {**combined[name], **entry}
                    else:
                        combined[name] = entry
                merged[key] = combined
            else:
                merged[key] = value
    return merged


@dataclass(frozen=True, slots=True)
class ConfigSources:
    """The layers a Settings was merged from: the config file (its path and contents), PAYGATE_* env, flags."""

    path: str | None
    file: dict[str, Any]
    env: dict[str, Any]
    flags: dict[str, Any]

    def merged(self, file_layer: dict[str, Any] | None = None) -> dict[str, Any]:
        """The raw dict, with `file_layer` in place of the file's contents if given (flags and env still win)."""
        file_layer = self.file if file_layer is None else file_layer
        return merge(normalise(file_layer), normalise(self.env), normalise(self.flags))


def read_sources(
    flags: dict[str, Any], config_path: str | None, environ: dict[str, str] | None = None
) -> ConfigSources:
    env_layer = from_env(environ)
    path = config_path or env_layer.pop("config", None) or (environ or os.environ).get("PAYGATE_CONFIG")
    return ConfigSources(path, load_file(path) if path else {}, env_layer, dict(flags))


def resolve_sources(
    flags: dict[str, Any], config_path: str | None, environ: dict[str, str] | None = None
) -> dict[str, Any]:
    """The merged raw dict, before validation (used by `wrap` and `validate`)."""
    return read_sources(flags, config_path, environ).merged()


def load_settings(
    flags: dict[str, Any], config_path: str | None = None, environ: dict[str, str] | None = None
) -> Settings:
    sources = read_sources(flags, config_path, environ)
    settings = Settings.model_validate(sources.merged())
    settings._sources = sources
    return settings


def sources_of(settings: Settings) -> ConfigSources | None:
    """What `settings` was loaded from (None: built directly, e.g. by an embedding program)."""
    return settings._sources
