"""Request tracing: GET/POST/DELETE /admin/tracing (tracing/recorder.py; docs/tracing.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.core.domain_errors import Invalid
from paygate.tracing.recorder import LIST_LIMIT, MAX_TRACES_LIMIT, Tracing


class TracingBody(Body):
    enabled: bool | None = None
    sample_rate: float | int | None = Field(default=None, ge=0, le=1)
    max_traces: int | None = Field(default=None, ge=1, le=MAX_TRACES_LIMIT)


def router(guard: AdminGuard, tracing: Tracing) -> APIRouter:
    r = guard.router("observability")

    @r.get("/admin/tracing")
    async def show(
        request_id: Annotated[str | None, Query(alias="requestId", max_length=128)] = None,
        trace_id: Annotated[str | None, Query(alias="traceId", pattern=r"^[0-9a-f]{32}$")] = None,
        tool: Annotated[str | None, Query(max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=LIST_LIMIT)] = 100,
    ) -> dict[str, Any]:
        """The settings, the latency summary, and the kept traces (newest first), optionally filtered."""
        traces = tracing.find(request_id, trace_id, tool, limit)
        return {**tracing.view(), "traces": traces, "count": len(traces)}

    @r.post("/admin/tracing")
    async def configure(body: TracingBody, request: Request) -> dict[str, Any]:
        """Switch tracing, or change the sample rate or how many traces are kept."""
        if not body.model_fields_set:
            raise Invalid("Invalid request: nothing to change (enabled, sampleRate or maxTraces)")
        rate = float(body.sample_rate) if body.sample_rate is not None else None
        tracing.configure(actor(request), body.enabled, rate, body.max_traces)
        return tracing.view()

    @r.delete("/admin/tracing")
    async def clear(request: Request) -> dict[str, Any]:
        """Forget the kept traces (the settings stay)."""
        return {"removed": tracing.clear(actor(request))}

    return r
