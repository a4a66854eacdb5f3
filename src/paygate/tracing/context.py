"""W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` a client sent, and the one
the gateway sends its HTTP backend for the call in progress (a context variable: the backend's POST runs
in the call's own task)."""

from __future__ import annotations

import re
from contextvars import ContextVar

# set by the tracing call stage for the duration of a traced call (traffic/tracing_stages.py), read by
# the HTTP backend when it builds a request's headers (mcp/backends/http.py)
TRACEPARENT: ContextVar[str | None] = ContextVar("paygate_traceparent", default=None)

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse_traceparent(value: bytes | str | None) -> tuple[str, str, bool] | None:
    """(trace id, parent span id, sampled) of a version-00 header; None when absent or malformed, or
    when an id is all zeros (the spec says such a header is ignored)."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    match = _TRACEPARENT.match(text.strip().lower())
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id, bool(int(flags, 16) & 1)


def traceparent(trace_id: str, span_id: str, sampled: bool = True) -> str:
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"
