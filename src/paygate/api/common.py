"""Shared pieces of the HTTP layer: the admin guard, the one error handler, request models' base.

Routers are built by the composition root (`paygate/compose/`) with the services they use passed in;
they parse, call a service, and shape the answer. Services raise `core.domain_errors`; this module
maps them to HTTP statuses once (`domain_error_handler`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException as StarletteHTTPException

from paygate.admin.auth import ROLE_RANK, AdminAuth, AdminIdentity
from paygate.admin.auth_throttle import AuthThrottle, AuthThrottled
from paygate.admin.rate_limit import AdminRate
from paygate.core.domain_errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    PaymentRequired,
    TooLarge,
    TooMany,
    Unauthenticated,
    Unavailable,
)
from paygate.core.netaddr import client_ip
from paygate.core.records import KeyRecord
from paygate.events.hub import EventHub
from paygate.keys.service import KeyNotFound, KeyService

HTTP_STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    PaymentRequired: 402,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    TooMany: 429,
    Unavailable: 503,
}


def status_of(exc: DomainError) -> int:
    for kind in type(exc).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return 400


class Body(BaseModel):
    """Request bodies: camelCase fields, unknown fields rejected, types not coerced from strings."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True)


KeyRefField = Annotated[str, Field(min_length=1, max_length=200, description="the API key or its alias")]


class KeyRef(Body):
    key: KeyRefField


def find_key(keys: KeyService, ref: str) -> KeyRecord:
    """The key named by its raw value or alias, or a 404 that changes nothing."""
    try:
        return keys.find(ref)
    except KeyNotFound as exc:
        raise NotFound("API key not found") from exc


# What an admin key scoped to a tenant may call (docs/tenants.md): its tenant's view, and who it is.
TENANT_SCOPED_ROUTES = frozenset({("GET", "/admin/tenants"), ("GET", "/admin/whoami")})
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


class AdminGuard:
    """The one admin check every admin route depends on: who is calling, and may their role do this.
    Async, like every route: the store is shared with the hot path and must only be touched from the
    event loop (FastAPI runs plain `def` routes and dependencies in a thread pool).

    Failed authentications are counted per client address (`throttle`, `authFailureLimit`): an
    address over the limit gets 429 on every admin route, a correct key included, until its window
    ends (admin/auth_throttle.py). Every admin request is counted too (`rate`, `adminRateLimit`,
    admin/rate_limit.py), before the key is looked at."""

    def __init__(
        self,
        admin: AdminAuth,
        events: EventHub,
        throttle: AuthThrottle | None = None,
        trusted_proxies: tuple[str, ...] = (),
        rate: AdminRate | None = None,
    ) -> None:
        self.admin = admin
        self.events = events
        self.throttle = throttle if throttle is not None else AuthThrottle(0)
        self.trusted_proxies = trusted_proxies
        self.rate = rate if rate is not None else AdminRate(0)  # adminRateLimit (admin/rate_limit.py)

    def client_address(self, request: Request) -> str | None:
        """The client address as the gate computes it (X-Forwarded-For believed only from a trusted proxy)."""
        peer = request.client.host if request.client else None
        return client_ip(peer, request.headers.get("x-forwarded-for"), self.trusted_proxies)

    def may_upload(self, peer: str | None, forwarded_for: str | None, presented: str | None, needed: str) -> bool:
        """Before a large body is read: does this request's admin key hold `needed` (the role of the
        route it goes to), from an address that is not throttled? Counts and publishes nothing."""
        if self.throttle.throttled_now(client_ip(peer, forwarded_for, self.trusted_proxies)):
            return False
        identity = self.admin.identify(presented)
        return identity is not None and identity.can(needed)

    async def __call__(self, request: Request) -> None:
        address = self.client_address(request)
        self.rate.check(address)
        refused = self.throttle.refuse(address)
        if refused is not None:
            retry_after, first = refused
            if first:
                self.events.publish(
                    "admin.auth_throttled",
                    "anonymous",
                    path=request.url.path,
                    ip=address,
                    limit=self.throttle.limit,
                    retryAfterSeconds=retry_after,
                )
            raise AuthThrottled(retry_after)
        identity = self.admin.identify(request.headers.get("x-admin-key"))
        if identity is None:
            self.throttle.failed(address)
            self.events.publish("admin.auth_failed", "anonymous", path=request.url.path, ip=address)
            raise Unauthenticated("Invalid or missing admin key (X-Admin-Key)")
        needed = required_role(request)
        if not identity.can(needed):
            self.events.publish(
                "admin.forbidden",
                identity.actor,
                path=request.url.path,
                method=request.method,
                role=identity.role,
                required=needed,
            )
            raise Forbidden(f"Forbidden: this endpoint needs the {needed} role (yours: {identity.role})")
        if identity.tenant_id is not None and (request.method, request.url.path) not in TENANT_SCOPED_ROUTES:
            path, method, tenant = request.url.path, request.method, identity.tenant_id
            self.events.publish("admin.forbidden", identity.actor, path=path, method=method, tenantId=tenant)
            raise Forbidden("Forbidden: this admin key is scoped to one tenant: it may only GET /admin/tenants")
        request.state.admin = identity
        self.admin.touch(identity)

    def router(self, tag: str) -> APIRouter:
        """An APIRouter whose every route is behind this guard."""
        return APIRouter(dependencies=[Depends(self)], tags=[tag])


def admin_of(request: Request) -> AdminIdentity:
    """The admin identity `require_admin` resolved for this request."""
    identity = getattr(request.state, "admin", None)
    assert isinstance(identity, AdminIdentity), "route is not behind require_admin"
    return identity


def actor(request: Request) -> str:
    """How events name the caller of an admin route."""
    return admin_of(request).actor


async def domain_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Every refusal an admin or client route gives: its kind's status, `{"error", ...extra, "requestId"}`."""
    assert isinstance(exc, DomainError)
    retry_after = getattr(exc, "retry_after", None)  # a refusal that says when to come back
    return JSONResponse(
        {"error": exc.message, **exc.extra, "requestId": request_id_of(request)},
        status_code=status_of(exc),
        headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
    )


def request_id_of(request: Request) -> str | None:
    value = request.scope.get("paygate.request_id")
    return str(value) if value else None


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """The framework's own refusals (no such path: 404; a method the path does not serve: 405, with
    `Allow`) in the same body as every other error."""
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"error": str(exc.detail), "requestId": request_id_of(request)},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def _message(error: Any) -> str:
    """pydantic's message, except where it hides what went wrong with the body as a whole."""
    if tuple(error["loc"]) == ("body",) and error["type"] in ("model_attributes_type", "dict_type"):
        return "the body must be a JSON object (Content-Type: application/json)"
    return str(error["msg"])


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query")), "message": _message(e)}
        for e in exc.errors()
    ]
    if exc.errors() and exc.errors()[0]["type"] == "json_invalid":  # the loc is a character offset
        details = [{"field": "", "message": f"the body is not valid JSON (at character {details[0]['field']})"}]
    first = details[0] if details else {"field": "", "message": "invalid request"}
    where = f"{first['field']}: " if first["field"] else ""
    return JSONResponse(
        {
            "error": f"Invalid request: {where}{first['message']}",
            "details": details,
            "requestId": request_id_of(request),
        },
        status_code=400,
    )
