"""Query-string parsing and file responses shared by the read-only log routes (audit, request log,
admin event stream): ISO 8601 times, comma-separated event types, CSV/JSON attachments."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from paygate.core.domain_errors import Invalid

M = TypeVar("M", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Any]]
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


def query_route(run: Callable[[M], Awaitable[Any]], model: type[M]) -> tuple[Endpoint, dict[str, Any]]:
    """An endpoint that reads `model` from the query string and calls `run(params)` (unknown or malformed
    parameters: a 400 with details, as FastAPI's own validation gives), and the `openapi_extra` that
    documents the parameters. Cheaper than declaring the model in the signature: FastAPI builds a pydantic
    adapter per route for that (~1.5 ms each, on every app built: the tests build hundreds)."""

    async def endpoint(request: Request) -> Any:
        try:
            params = model.model_validate(dict(request.query_params))
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from exc
        return await run(params)

    endpoint.__module__ = run.__module__  # the route's code is where `run` is (docs/endpoints.md)
    return endpoint, {"parameters": query_parameters(model)}


def add_query_route(
    router: APIRouter, path: str, run: Callable[[M], Awaitable[Any]], model: type[M], **route: Any
) -> None:
    """`GET path` on `router`, answered by `run(params)` with `params` read from the query string as `model`."""
    endpoint, documented = query_route(run, model)
    router.add_api_route(path, endpoint, methods=["GET"], openapi_extra=documented, **route)


@functools.cache
def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI description of a query model's parameters (once per model per process)."""
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field}
        for name, field in schema.get("properties", {}).items()
    ]


def attachment(body: str | bytes, media_type: str, filename: str) -> Response:
    """A download: the browser or curl -OJ saves it as `filename`."""
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def csv_response(text: str, filename: str) -> Response:
    return attachment(text, "text/csv; charset=utf-8", filename)


def file_stamp() -> str:
    """The current UTC time for export file names (sortable, no colons)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
