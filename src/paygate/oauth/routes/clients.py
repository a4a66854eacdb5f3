"""POST /oauth/register (RFC 7591 dynamic registration, public) and GET /oauth/clients (admin)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paygate.api.common import AdminGuard
from paygate.oauth.clients import ClientRegistry, Registration
from paygate.oauth.errors import OAuthError
from paygate.oauth.routes.forms import NO_STORE, oauth_error


class RegisterBody(BaseModel):
    """RFC 7591 §2 client metadata this server reads; other metadata (logo_uri, contacts …) is ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    redirect_uris: list[str] = Field(min_length=1, max_length=10)
    client_name: str | None = Field(default=None, max_length=200)
    token_endpoint_auth_method: str = Field(default="client_secret_basic", max_length=64)
    grant_types: list[str] = Field(default_factory=lambda: ["authorization_code", "refresh_token"], max_length=5)
    response_types: list[str] = Field(default_factory=lambda: ["code"], max_length=5)
    scope: str | None = Field(default=None, max_length=4000)
    api_key: str | None = Field(default=None, min_length=1, max_length=200)


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def client_router(registry: ClientRegistry) -> APIRouter:
    r = APIRouter(tags=["oauth"])

    @r.post("/oauth/register", status_code=201)
    async def register(request: Request) -> JSONResponse:
        """Dynamic client registration (RFC 7591); `api_key` binds the client to a key."""
        try:
            raw = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return oauth_error(OAuthError("invalid_client_metadata", "the body must be a JSON object"))
        try:
            body = RegisterBody.model_validate(raw)
            if any(len(u) > 2000 for u in body.redirect_uris):
                raise OAuthError("invalid_redirect_uri", "a redirect URI is at most 2000 characters")
            answer = registry.register(Registration(**body.model_dump()))
        except ValidationError as exc:
            code = (
                "invalid_redirect_uri"
                if exc.errors()[0]["loc"][:1] == ("redirect_uris",)
                else "invalid_client_metadata"
            )
            return oauth_error(OAuthError(code, _problem(exc)))
        except OAuthError as exc:
            return oauth_error(exc)
        return JSONResponse(answer, 201, NO_STORE)

    return r


def admin_router(guard: AdminGuard, registry: ClientRegistry) -> APIRouter:
    r = guard.router("oauth")

    @r.get("/oauth/clients")
    async def clients() -> dict[str, Any]:
        """Every registered OAuth client (never a secret)."""
        listing = registry.listing()
        return {"clients": listing, "total": len(listing)}

    return r
