"""Traffic control settings (paygate/traffic, docs/traffic.md), under the reference's names where it has
them. Each control is also adjustable at runtime through its admin endpoint; these are the values a
gateway starts with. `Settings` inherits these fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class RetryOnConfig(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    transport: bool = True  # an unavailable backend
    error_codes: list[int] = Field(default_factory=list, max_length=50)  # JSON-RPC error codes (idempotent tools)


class RetryPolicyConfig(BaseModel):
    """`retryPolicy {…}`: the retry policy a gateway starts with (off unless `enabled`); the fields of
    `POST /admin/retry-policy` (traffic/retry.py)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    enabled: bool = False
    max_retries: int = Field(default=2, ge=0, le=10)
    base_backoff_ms: int = Field(default=100, ge=0, le=60_000)
    max_backoff_ms: int = Field(default=2000, ge=0, le=300_000)
    retry_on: RetryOnConfig = Field(default_factory=lambda: RetryOnConfig())
    idempotent_tools: list[str] = Field(default_factory=list, max_length=1000)
    retry_budget_percent: float = Field(default=20.0, ge=0, le=100)


class TrafficSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    # Response cache (traffic/cache.py): seconds an answer is kept (0 or unset = off, unless a tool sets
    # its own toolPricing[t].cacheTtlSeconds) and entries in all.
    cache_ttl_seconds: int | None = Field(default=None, ge=0, le=86_400 * 30)
    max_cache_entries: int | None = Field(default=None, ge=0, le=1_000_000)
    # Circuit breaker (traffic/breaker.py): consecutive failures that open it (unset or 0 = off), and
    # seconds it stays open before one probe call is let through.
    circuit_breaker_threshold: int | None = Field(default=None, ge=0, le=1_000_000)
    circuit_breaker_cooldown_seconds: float | None = Field(default=None, ge=0, le=86_400)
    # Ours: one breaker per tool rather than per backend (per server prefix behind `servers`).
    circuit_breaker_per_tool: bool = False
    # Retry policy (traffic/retry.py): off unless set with `enabled: true`; adjustable at runtime.
    retry_policy: RetryPolicyConfig | None = None
    # Concurrency limits: calls in flight per key and per tool (unset or 0 = no limit).
    max_concurrent_per_key: int | None = Field(default=None, ge=0, le=1_000_000)
    max_concurrent_per_tool: int | None = Field(default=None, ge=0, le=1_000_000)
    # Traffic mirror: {url, percentage, timeoutMs}.
    mirror: dict[str, Any] | None = None
