"""Traffic control settings (paygate/traffic, docs/traffic.md), under the reference's names where it has
them. Each control is also adjustable at runtime through its admin endpoint; these are the values a
gateway starts with. `Settings` inherits these fields."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Tier = Literal["critical", "high", "normal", "low", "background"]
WaitMs = Annotated[int, Field(ge=1, le=3_600_000)]


class PriorityQueueSettings(BaseModel):
    """`priorityQueue {…}`: calls that find a concurrency limit reached wait, by their key's tier
    (traffic/priority.py); keys get their tiers through POST /admin/priority-queue."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    enabled: bool = False
    max_queue_depth: int = Field(default=100, ge=1, le=100_000)
    max_wait_ms: dict[Tier, WaitMs] = Field(default_factory=dict)  # per tier; others keep their defaults
    promote_after_ms: int = Field(default=1_000, ge=0, le=3_600_000)  # 0: never promoted


class MirrorSettings(BaseModel):
    """`mirror: {url, percentage, timeoutMs}` (the reference's names): a sampled copy of each tools/call
    to a shadow server, never charged, never awaited (traffic/mirror.py)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    url: str = Field(min_length=1, max_length=2048)
    percentage: int = Field(default=100, ge=0, le=100)
    timeout_ms: int = Field(default=5000, ge=1, le=300_000)


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


class TracingConfig(BaseModel):
    """Request tracing (tracing/recorder.py, docs/tracing.md)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    enabled: bool = False
    sample_rate: float = Field(default=1.0, ge=0, le=1)
    max_traces: int = Field(default=1000, ge=1, le=100_000)
    # OTLP/HTTP traces endpoint of an OpenTelemetry collector, e.g. http://127.0.0.1:4318/v1/traces
    otlp_endpoint: str | None = Field(default=None, min_length=1, max_length=2048, pattern=r"^https?://\S+$")
    service_name: str = Field(default="paygate-mcp", min_length=1, max_length=128)


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
    # Ours: one breaker per tool rather than per backend (per server prefix behind `servers`).
    circuit_breaker_per_tool: bool = False
    # Retry policy (traffic/retry.py): off unless set with `enabled: true`; adjustable at runtime.
    retry_policy: RetryPolicyConfig | None = None
    # Concurrency limits: calls in flight per key and per tool (unset or 0 = no limit).
    max_concurrent_per_key: int | None = Field(default=None, ge=0, le=1_000_000)
    max_concurrent_per_tool: int | None = Field(default=None, ge=0, le=1_000_000)
    # Traffic mirror (traffic/mirror.py): {url, percentage, timeoutMs}; POST /admin/mirror replaces it.
    mirror: MirrorSettings | None = None
    # Canary and mirror URLs (traffic/remote.py) may name loopback / private addresses (SSRF guard off).
    traffic_allow_private: bool = False
    # Priority queue (traffic/priority.py): waiting for a slot instead of -32005 at once.
    priority_queue: PriorityQueueSettings | None = None
    # Request tracing and OpenTelemetry export (tracing/, docs/tracing.md).
    tracing: TracingConfig | None = None
