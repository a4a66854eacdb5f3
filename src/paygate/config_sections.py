"""The config file's nested sections that are not a settings group of their own: a tool's pricing (and
its traffic overrides), the expiry scanner, and one backend of a multi-server gateway."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class ConfigModel(BaseModel):
    """camelCase keys as the config file spells them; unknown keys refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ToolPricingConfig(ConfigModel):
    credits_per_call: int | None = Field(default=None, ge=0)
    credits_per_kb_input: int = Field(default=0, ge=0)
    credits_per_kb_output: int = Field(default=0, ge=0)
    rate_limit_per_min: int = Field(default=0, ge=0)
    # This tool's own timeout (0 or unset: toolTimeoutSeconds); its response cache TTL (0: never cached) and
    # whether its cached answers are shared by every key (ours): traffic/cache.py, docs/traffic.md.
    timeout_ms: int | None = Field(default=None, ge=0, le=86_400_000)
    cache_ttl_seconds: int | None = Field(default=None, ge=0, le=86_400 * 30)
    cache_shared: bool = False


class ExpiryScannerConfig(ConfigModel):
    """The background scan for keys about to expire (`key.expiry_warning`, once per key and threshold)."""

    enabled: bool = True
    interval_seconds: int = Field(default=3600, ge=60, le=86_400)
    thresholds: list[Annotated[int, Field(gt=0, le=366 * 86_400)]] = Field(
        default_factory=lambda: [604_800, 86_400, 3_600], min_length=1, max_length=20
    )


class ServerConfig(ConfigModel):
    prefix: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    server_command: str | None = None
    server_args: list[str] = Field(default_factory=list)
    remote_url: str | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if bool(self.server_command) == bool(self.remote_url):
            raise ValueError("each server needs exactly one of serverCommand or remoteUrl")
        return self
