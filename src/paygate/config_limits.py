"""Resource limits: what one stranger (or one buggy client) may hold of the gateway.

Each is a top-level config key (the reference's name where it has one), checked by `validate`,
documented in docs/configuration.md, and in docs/security.md with what it protects and what a
client sees when it is hit. `Settings` inherits these fields.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

MIB = 1_048_576


class GlobalQuota(BaseModel):
    """`globalQuota`: the quota of every key without its own (or its group's or plan's); 0 = unlimited."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    daily_call_limit: int = Field(default=0, ge=0)
    monthly_call_limit: int = Field(default=0, ge=0)
    daily_credit_limit: int = Field(default=0, ge=0)
    monthly_credit_limit: int = Field(default=0, ge=0)
    hourly_call_limit: int = Field(default=0, ge=0)  # every key's hourly spend caps (config_rules.py)
    hourly_credit_limit: int = Field(default=0, ge=0)

    def as_quota(self) -> dict[str, int]:
        return {
            "dailyCallLimit": self.daily_call_limit,
            "monthlyCallLimit": self.monthly_call_limit,
            "dailyCreditLimit": self.daily_credit_limit,
            "monthlyCreditLimit": self.monthly_credit_limit,
        }


class LimitSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    # --- connections (the HTTP server: paygate/http/server.py) ---
    # Open connections in all; the effective cap is also kept under the process's file limit (less 128
    # for the store, backends and webhooks; the soft limit is raised toward the hard one at start).
    max_connections: int = Field(default=10_000, ge=1, le=1_000_000)
    # Open connections from one client address (trusted proxies exempt); 0 = no per-address cap.
    max_connections_per_address: int = Field(default=256, ge=0, le=1_000_000)
    # From a connection's opening (on a kept-alive connection: its next request's first byte) until that
    # request's headers are complete; a connection that sends nothing is closed after it too.
    headers_timeout_ms: int = Field(default=10_000, ge=100, le=600_000)
    # From a request's first byte until its whole body has arrived; 0 = no limit.
    request_timeout_ms: int = Field(default=30_000, ge=0, le=3_600_000)
    # An idle keep-alive connection (no request started) is closed after this long.
    keep_alive_timeout_ms: int = Field(default=65_000, ge=100, le=3_600_000)
    # Requests served on one connection before it is closed; 0 = no limit.
    max_requests_per_socket: int = Field(default=0, ge=0, le=10_000_000)
    # Request line plus headers; more gets 431 and the connection closed.
    max_header_bytes: int = Field(default=16_384, ge=1024, le=MIB)

    # --- MCP (paygate/mcp) ---
    # Entries in one JSON-RPC batch on POST /mcp; more is refused whole (-32600), nothing runs.
    max_batch_size: int = Field(default=100, ge=1, le=10_000)
    # Once a batch's answers reach this size, its remaining entries are not run (each gets -32600).
    max_batch_response_bytes: int = Field(default=8 * MIB, ge=64 * 1024, le=1024 * MIB)
    # Sessions opened with an API key, in all and per key.
    max_sessions: int = Field(default=1000, ge=1, le=1_000_000)
    max_sessions_per_key: int = Field(default=100, ge=1, le=1_000_000)
    # Sessions opened without a key: a separate pool, so strangers cannot evict paying clients.
    max_anonymous_sessions: int = Field(default=200, ge=0, le=1_000_000)
    # New sessions per client address per minute (the reference's `sessionRateLimit`); 0 = no limit.
    session_rate_limit: int = Field(default=60, ge=0, le=1_000_000)
    # Open GET /mcp streams per session (a resume with Last-Event-ID counts too).
    max_streams_per_session: int = Field(default=3, ge=1, le=100)

    # MCP tasks (mcp/tasks.py), held in memory: in all and per key (finished ones make room first), and
    # how long one is kept from its creation: the default, and the most a requester may ask (`task.ttl`).
    max_tasks: int = Field(default=10_000, ge=1, le=1_000_000)
    max_tasks_per_key: int = Field(default=100, ge=1, le=1_000_000)
    task_ttl_ms: int = Field(default=3_600_000, ge=1000, le=7 * 86_400_000)
    max_task_ttl_ms: int = Field(default=86_400_000, ge=1000, le=7 * 86_400_000)

    # --- credentials ---
    # Failed admin-key authentications per client address per minute; beyond it, 429; 0 = no limit.
    auth_failure_limit: int = Field(default=30, ge=0, le=1_000_000)
    # Failed-authentication rows kept in the audit log, apart from (and never pruning) the rest.
    audit_auth_failure_max_entries: int = Field(default=1000, ge=10, le=1_000_000)
