"""Dry runs: /requests/dry-run and /requests/dry-run/batch evaluate the gate without charging.

Read-only POSTs (viewer role): nothing is charged, counted, recorded or published.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter
from pydantic import AfterValidator, Field, field_validator, model_validator

from paygate.api.common import AdminGuard, Body, KeyRefField, role
from paygate.reports.dry_run import Call
from paygate.reports.service import ReportService

MAX_BATCH = 100
ToolName = Field(min_length=1, max_length=200)


def as_a_real_call_reads(arguments: dict[str, Any] | None) -> dict[str, Any] | None:
    """The arguments as /mcp would see them: its JSON parser (orjson) reads an integer past 64 bits as a
    float, which changes the size a per-KB price is computed from; and what it cannot serialise back
    (NaN, nesting past 254 levels) cannot be priced, so it is refused here rather than failing later."""
    if arguments is None:
        return None
    try:
        parsed: dict[str, Any] = orjson.loads(json.dumps(arguments, allow_nan=False))
        orjson.dumps(parsed)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "arguments must be plain JSON a tools/call can carry (no NaN or Infinity, at most 254 levels deep)"
        ) from exc
    return parsed


Arguments = Annotated[dict[str, Any] | None, AfterValidator(as_a_real_call_reads)]


class ClientFields(Body):
    """Where the simulated call comes from, for keys with IP or country rules (absent: no address, no country)."""

    client_ip: str | None = Field(default=None, max_length=64)
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")

    @field_validator("client_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)  # ValueError -> 400
        return value

    def country_code(self) -> str | None:
        return self.country.upper() if self.country else None


class DryRunBody(ClientFields):
    key: KeyRefField
    tool: str = ToolName
    arguments: Arguments = None


class BatchCall(Body):
    name: str = ToolName
    arguments: Arguments = None


class BatchBody(ClientFields):
    key: KeyRefField
    tools: list[BatchCall] | None = Field(default=None, min_length=1, max_length=MAX_BATCH)
    calls: list[BatchCall] | None = Field(
        default=None, min_length=1, max_length=MAX_BATCH, description="the same as tools"
    )

    @model_validator(mode="after")
    def _one_list(self) -> BatchBody:
        if (self.tools is None) == (self.calls is None):
            raise ValueError("give the calls as tools (or calls), one list of 1-100 {name, arguments?}")
        return self

    def call_list(self) -> list[Call]:
        return [Call(c.name, c.arguments) for c in (self.tools or self.calls or [])]


def router(guard: AdminGuard, service: ReportService) -> APIRouter:
    r = guard.router("dry-run")

    @r.post("/requests/dry-run", openapi_extra=role("viewer"))
    async def dry_run(body: DryRunBody) -> dict[str, Any]:
        """Would this key's call to this tool be allowed now? The same gate as a real call; nothing charged."""
        return service.dry_run(body.key, Call(body.tool, body.arguments), body.client_ip, body.country_code())

    @r.post("/requests/dry-run/batch", openapi_extra=role("viewer"))
    async def dry_run_batch(body: BatchBody) -> dict[str, Any]:
        """Would these calls, made in order, all be allowed? Credits and spending limit checked in aggregate."""
        return service.dry_run_batch(body.key, body.call_list(), body.client_ip, body.country_code())

    return r
