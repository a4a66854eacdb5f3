"""Canary routing: GET/POST/PATCH/DELETE /admin/canary (traffic/canary.py; docs/traffic.md, "Canary")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.core.domain_errors import Invalid
from paygate.traffic.canary import Canary

Weight = Field(ge=0, le=100, description="percent of tools/call requests sent to the canary")


class CanaryBody(Body):
    remote_url: str | None = Field(default=None, min_length=1, max_length=2048)
    server_command: str | None = Field(default=None, max_length=4096)
    server_args: list[str] | None = Field(default=None, max_length=100)
    weight: int = Weight
    breaker_threshold: int = Field(default=5, ge=1, le=1000)
    breaker_cooldown_seconds: float = Field(default=30.0, ge=0.1, le=86_400)


class CanaryPatch(Body):
    weight: int | None = Field(default=None, ge=0, le=100)
    breaker_threshold: int | None = Field(default=None, ge=1, le=1000)
    breaker_cooldown_seconds: float | None = Field(default=None, ge=0.1, le=86_400)


def router(guard: AdminGuard, canary: Canary) -> APIRouter:
    r = guard.router("traffic")

    @r.get("/admin/canary")
    async def get_canary() -> dict[str, Any]:
        """The canary, its weight, its breaker and per-variant calls, errors and latency."""
        return canary.view()

    @r.post("/admin/canary")
    async def start_canary(body: CanaryBody, request: Request) -> dict[str, Any]:
        """Connect to a canary server (replacing any) and route `weight`% of tools/call to it."""
        if body.server_command is not None or body.server_args is not None:
            # An admin key is not a shell: a command to run comes only from whoever writes the config.
            raise Invalid("Invalid request: serverCommand: a canary is a remote server (remoteUrl) over the API")
        if body.remote_url is None:
            raise Invalid("Invalid request: remoteUrl is required")
        await canary.start(
            body.remote_url, body.weight, body.breaker_threshold, body.breaker_cooldown_seconds, actor(request)
        )
        return canary.view()

    @r.patch("/admin/canary")
    async def update_canary(body: CanaryPatch, request: Request) -> dict[str, Any]:
        """Change the weight (or the breaker's threshold and cooldown) without a restart."""
        if body.weight is None and body.breaker_threshold is None and body.breaker_cooldown_seconds is None:
            raise Invalid("Invalid request: nothing to change (weight, breakerThreshold, breakerCooldownSeconds)")
        canary.update(body.weight, body.breaker_threshold, body.breaker_cooldown_seconds, actor(request))
        return canary.view()

    @r.delete("/admin/canary")
    async def stop_canary(request: Request) -> dict[str, Any]:
        """Stop routing to the canary; its calls in flight finish, then it is closed."""
        canary.stop(actor(request))
        return canary.view()

    return r
