"""Query-string parsing and file responses shared by the read-only log routes (audit, request log,
admin event stream): ISO 8601 times, comma-separated event types, CSV/JSON attachments."""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Query
from fastapi.responses import Response
from pydantic import BaseModel

from paygate.core.domain_errors import Invalid

E = TypeVar("E", bound=Callable[..., Any])
MAX_TYPES = 50
_TYPE_OK = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

TypesQuery = Annotated[str | None, Query(max_length=4000, description="comma-separated event types")]
TimeQuery = Annotated[str | None, Query(max_length=64, description="ISO 8601; UTC when no zone is given")]
FormatQuery = Annotated[Literal["json", "csv"], Query(description="json or csv")]


def parse_time(name: str, value: str | None) -> float | None:
    """An ISO 8601 date-time as a Unix time (UTC when it names no zone), or `Invalid` (a 400)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid(f"Invalid request: {name} must be an ISO 8601 date-time") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def parse_window(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """`since` and `until` (inclusive), or `Invalid` (a 400) when either is malformed or since is after until."""
    start, end = parse_time("since", since), parse_time("until", until)
    if start is not None and end is not None and start > end:
        raise Invalid("Invalid request: since must not be after until")
    return start, end


def parse_types(types: str | None) -> tuple[str, ...]:
    """The event types a comma-separated list names (empty: all), or `Invalid` (a 400)."""
    if types is None:
        return ()
    names = tuple(dict.fromkeys(t.strip() for t in types.split(",") if t.strip()))
    if not names:
        raise Invalid("Invalid request: types must name at least one event type")
    if len(names) > MAX_TYPES:
        raise Invalid(f"Invalid request: types names at most {MAX_TYPES} event types")
    bad = next((t for t in names if not _TYPE_OK.match(t)), None)
    if bad is not None:
        raise Invalid(f"Invalid request: types: {bad[:64]!r} is not an event type")
    return names


def takes_query(endpoint: E, model: type[BaseModel]) -> E:
    """`endpoint(*, params)` with `params` read from the query string as `model` (FastAPI reads parameters
    from the signature: each generated route gets its own model, so unknown or malformed ones are a 400)."""
    annotation = Annotated[model, Query()]  # type: ignore[valid-type]  # a model chosen at run time
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("params", inspect.Parameter.KEYWORD_ONLY, annotation=annotation)]
    )
    return endpoint


def attachment(body: str | bytes, media_type: str, filename: str) -> Response:
    """A download: the browser or curl -OJ saves it as `filename`."""
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def csv_response(text: str, filename: str) -> Response:
    return attachment(text, "text/csv; charset=utf-8", filename)


def file_stamp() -> str:
    """The current UTC time for export file names (sortable, no colons)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
