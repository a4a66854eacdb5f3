"""Shared pieces of the HTTP layer: admin auth, errors, request models' base."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from paygate.admin.auth import ROLE_RANK, AdminIdentity
from paygate.core.records import KeyRecord
from paygate.keys.service import KeyNotFound
from paygate.runtime import Runtime


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class Body(BaseModel):
    """Request bodies: camelCase fields, unknown fields rejected, types not coerced from strings."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True)


KeyRefField = Annotated[str, Field(min_length=1, max_length=200, description="the API key or its alias")]


class KeyRef(Body):
    key: KeyRefField


def find_key(rt: Runtime, ref: str) -> KeyRecord:
    """The key named by its raw value or alias, or a 404 that changes nothing."""
    try:
        return rt.keys.find(ref)
    except KeyNotFound as exc:
        raise ApiError(404, "API key not found") from exc


ROLE_EXTRA = "x-required-role"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def role(name: str) -> dict[str, Any]:
    """A route's role declaration: `@r.post(path, openapi_extra=role("viewer"))`. Without one, a route
    needs `viewer` for GET/HEAD and `admin` for everything else; `super_admin` routes say so."""
    if name not in ROLE_RANK:
        raise ValueError(f"unknown role {name!r}")
    return {ROLE_EXTRA: name}


def required_role(request: Request) -> str:
    route = request.scope.get("route")
    declared = (getattr(route, "openapi_extra", None) or {}).get(ROLE_EXTRA)
    if declared:
        return str(declared)
    return "viewer" if request.method in READ_METHODS else "admin"


def require_admin(rt: Runtime) -> Callable[[Request], Awaitable[None]]:
    """The one admin check every admin route depends on: who is calling, and may their role do this.
    Async, like every route: the store is shared with the hot path and must only be touched from the
    event loop (FastAPI runs plain `def` routes and dependencies in a thread pool)."""

    async def dependency(request: Request) -> None:
        identity = rt.admin.identify(request.headers.get("x-admin-key"))
        if identity is None:
            client = request.client.host if request.client else None
            rt.events.publish("admin.auth_failed", "anonymous", path=request.url.path, ip=client)
            raise ApiError(401, "Invalid or missing admin key (X-Admin-Key)")
        needed = required_role(request)
        if not identity.can(needed):
            rt.events.publish("admin.forbidden", identity.actor, path=request.url.path, method=request.method,
                              role=identity.role, required=needed)
            raise ApiError(403, f"Forbidden: this endpoint needs the {needed} role (yours: {identity.role})")
        request.state.admin = identity
        rt.admin.touch(identity)

    return dependency


def admin_of(request: Request) -> AdminIdentity:
    """The admin identity `require_admin` resolved for this request."""
    identity = getattr(request.state, "admin", None)
    assert isinstance(identity, AdminIdentity), "route is not behind require_admin"
    return identity


def actor(request: Request) -> str:
    """How events name the caller of an admin route."""
    return admin_of(request).actor


async def api_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status)


async def validation_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query")), "message": e["msg"]}
        for e in exc.errors()
    ]
    first = details[0] if details else {"field": "", "message": "invalid request"}
    where = f"{first['field']}: " if first["field"] else ""
    return JSONResponse({"error": f"Invalid request: {where}{first['message']}", "details": details},
                        status_code=400)
