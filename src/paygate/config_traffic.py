"""Traffic control settings (paygate/traffic, docs/traffic.md), under the reference's names where it has
them. Each control is also adjustable at runtime through its admin endpoint; these are the values a
gateway starts with. `Settings` inherits these fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class TrafficSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    # Response cache (traffic/cache.py): seconds an answer is kept (0 or unset = off, unless a tool sets
    # its own toolPricing[t].cacheTtlSeconds) and entries in all.
    cache_ttl_seconds: int | None = Field(default=None, ge=0, le=86_400 * 30)
    max_cache_entries: int | None = Field(default=None, ge=0, le=1_000_000)
    # Dedup / idempotency (traffic/dedup.py; ours, the reference has no settings for it): whether a repeated
    # X-Idempotency-Key gets the first call's answer, for how long after that call, how many are kept, and
    # whether calls without the header are keyed by their own tool and arguments (off: never merged).
    dedup_enabled: bool = False
    dedup_window_seconds: int = Field(default=300, ge=1, le=86_400)
    dedup_max_entries: int = Field(default=10_000, ge=1, le=1_000_000)
    dedup_auto_key: bool = False
    # Circuit breaker (traffic/breaker.py): consecutive failures that open it (unset or 0 = off), and
    # seconds it stays open before one probe call is let through.
    circuit_breaker_threshold: int | None = Field(default=None, ge=0, le=1_000_000)
    circuit_breaker_cooldown_seconds: float | None = Field(default=None, ge=0, le=86_400)
    # Concurrency limits: calls in flight per key and per tool (unset or 0 = no limit).
    max_concurrent_per_key: int | None = Field(default=None, ge=0, le=1_000_000)
    max_concurrent_per_tool: int | None = Field(default=None, ge=0, le=1_000_000)
    # Traffic mirror: {url, percentage, timeoutMs}.
    mirror: dict[str, Any] | None = None
