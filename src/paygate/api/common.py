"""Shared pieces of the HTTP layer: admin auth, errors, request models' base."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from paygate.services.runtime import Runtime


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class Body(BaseModel):
    """Request bodies: camelCase fields, unknown fields rejected, types not coerced from strings."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True)


def require_admin(rt: Runtime) -> Callable[[Request], None]:
    def dependency(request: Request) -> None:
        if not rt.admin.check(request.headers.get("x-admin-key")):
            client = request.client.host if request.client else None
            rt.events.publish("admin.auth_failed", "anonymous", path=request.url.path, ip=client)
            raise ApiError(401, "Invalid or missing admin key (X-Admin-Key)")

    return dependency


async def api_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status)


async def validation_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
        for e in exc.errors()
    ]
    first = details[0] if details else {"field": "", "message": "invalid request"}
    where = f"{first['field']}: " if first["field"] else ""
    return JSONResponse({"error": f"Invalid request: {where}{first['message']}", "details": details},
                        status_code=400)
