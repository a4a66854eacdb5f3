"""Tracing on the call path (tracing/recorder.py): the outermost call stage times the whole call and the
innermost send stage the requests upstream, so a trace splits into gate and backend time."""

from __future__ import annotations

import time
from contextvars import ContextVar

from paygate.mcp.jsonrpc import Message
from paygate.tracing.context import TRACEPARENT, traceparent
from paygate.tracing.recorder import Span, Tracing
from paygate.traffic.chain import Proceed, Send, ToolCall, Upstream

_SPAN: ContextVar[Span | None] = ContextVar("paygate_span", default=None)


class TraceCalls:
    """The outermost call stage: a span per sampled call, its traceparent for the backend's requests."""

    name = "tracing"

    def __init__(self, tracing: Tracing) -> None:
        self.tracing = tracing
        self.enabled = tracing.enabled  # kept in step by compose/tracing.py when an admin switches it

    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        headers = call.ctx.client.headers
        span = self.tracing.begin(call.tool, call.ctx.request_id, headers.get(b"traceparent") if headers else None)
        if span is None:
            return await proceed(call)
        span_token = _SPAN.set(span)
        parent_token = TRACEPARENT.set(traceparent(span.trace_id, span.span_id))
        try:
            reply = await proceed(call)
        finally:
            TRACEPARENT.reset(parent_token)
            _SPAN.reset(span_token)
        key = call.ctx.key
        error = reply.get("error")
        self.tracing.end(span, key.masked if key else None, call.notes.get("credits"), error)
        return reply


class TraceSends:
    """The innermost send stage: the time spent in requests upstream (retries included)."""

    name = "tracing_backend"

    def __init__(self, tracing: Tracing) -> None:
        self.tracing = tracing
        self.enabled = tracing.enabled  # kept in step by compose/tracing.py when an admin switches it

    async def around(self, request: Upstream, send: Send) -> Message:
        span = _SPAN.get()
        if span is None:
            return await send(request)
        started = time.perf_counter()
        try:
            return await send(request)
        finally:
            span.backend_s += time.perf_counter() - started
