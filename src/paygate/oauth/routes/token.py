"""POST /oauth/token (authorization code and refresh grants) and POST /oauth/revoke (RFC 7009)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from paygate.oauth.errors import OAuthError
from paygate.oauth.grants import Grants
from paygate.oauth.routes.forms import NO_STORE, basic_credentials, body_params, oauth_error


def router(grants: Grants) -> APIRouter:
    r = APIRouter(tags=["oauth"])

    @r.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        """Exchange an authorization code (with its PKCE verifier) or a refresh token for tokens."""
        try:
            answer = grants.token(await body_params(request), basic_credentials(request))
        except OAuthError as exc:
            return oauth_error(exc)
        return JSONResponse(answer, 200, NO_STORE)

    @r.post("/oauth/revoke")
    async def revoke(request: Request) -> JSONResponse:
        """Revoke an access or refresh token (a refresh token takes its grant's access tokens with it);
        200 for an unknown token too."""
        try:
            grants.revoke(await body_params(request), basic_credentials(request))
        except OAuthError as exc:
            return oauth_error(exc)
        return JSONResponse({}, 200, NO_STORE)

    return r
