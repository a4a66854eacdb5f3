"""GET /admin/circuit (viewer): every circuit breaker's state, failures and refusals. POST /admin/circuit
(admin): reset to closed (all, or one `breaker`), optionally with a new threshold, cooldown or per-tool
scope, applied at once and kept (traffic/circuit.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.traffic.circuit import CircuitBreakers


class CircuitChange(Body):
    """All optional: an empty body (or none) resets every breaker to closed."""

    breaker: str | None = Field(default=None, min_length=1, max_length=300, description="reset only this one")
    threshold: int | None = Field(default=None, ge=0, le=1_000_000, description="consecutive failures; 0 = off")
    cooldown_seconds: float | None = Field(default=None, ge=0, le=86_400)
    per_tool: bool | None = None


def router(guard: AdminGuard, circuits: CircuitBreakers) -> APIRouter:
    r = guard.router("traffic")

    @r.get("/admin/circuit")
    async def circuit_view() -> dict[str, Any]:
        """The breakers' settings and, per breaker, its state, consecutive failures and refusals."""
        return circuits.view()

    @r.post("/admin/circuit")
    async def circuit_reset(request: Request, body: CircuitChange | None = None) -> dict[str, Any]:
        """Reset to closed; new settings apply at once and are kept (audited: circuit.reset / circuit.updated)."""
        b = body or CircuitChange()
        return circuits.update(b.threshold, b.cooldown_seconds, b.per_tool, b.breaker, actor(request))

    return r
