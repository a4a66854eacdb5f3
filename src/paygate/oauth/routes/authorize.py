"""GET /oauth/authorize (the consent page) and POST /oauth/authorize (the key holder's decision)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from paygate.oauth.authorization import Authorizations, AuthRequest, RedirectedError, Unredirectable
from paygate.oauth.client_documents import ClientDocuments
from paygate.oauth.consent_page import consent_page, error_page
from paygate.oauth.errors import ConsentRefused, OAuthError
from paygate.oauth.routes.forms import base_of, body_params, query_params

COOKIE = "paygate_oauth_csrf"
COOKIE_AGE = 1800


def _page(auth: Authorizations, request: Request, req: AuthRequest, status: int, error: str | None = None) -> Response:
    cookie = request.cookies.get(COOKIE) or auth.new_cookie()
    answer = HTMLResponse(consent_page(req, auth.csrf_token(cookie, req), error), status)
    answer.set_cookie(
        COOKIE,
        cookie,
        max_age=COOKIE_AGE,
        path="/oauth/authorize",
        httponly=True,
        samesite="strict",  # a form posted from another site arrives without it: refused
        secure=request.url.scheme == "https",
    )
    return answer


def router(auth: Authorizations, documents: ClientDocuments | None, fallback_base: str) -> APIRouter:
    r = APIRouter(tags=["oauth"])

    async def checked(params: dict[str, str], base: str) -> AuthRequest:
        if documents is not None:  # a client known by its metadata document's URL: fetched, or fresh enough
            await documents.ensure(params.get("client_id"))
        return auth.check(params, base)

    @r.get("/oauth/authorize", response_class=HTMLResponse)
    async def authorize_page(request: Request) -> Response:
        """The consent page for an authorization request (code flow, PKCE S256)."""
        try:
            req = await checked(query_params(request), base_of(request, fallback_base))
        except (Unredirectable, OAuthError) as exc:
            return HTMLResponse(error_page(str(exc)), 400)
        except RedirectedError as exc:
            return RedirectResponse(exc.location, 302)
        return _page(auth, request, req, 200)

    @r.post("/oauth/authorize", response_class=HTMLResponse)
    async def authorize_decision(request: Request) -> Response:
        """The consent form's answer: a redirect with a code (approve) or `access_denied` (deny)."""
        base = base_of(request, fallback_base)
        try:
            params = await body_params(request)
            req = await checked(params, base)
        except (Unredirectable, OAuthError) as exc:
            return HTMLResponse(error_page(str(exc)), 400)
        except RedirectedError as exc:
            return RedirectResponse(exc.location, 303)
        try:
            location = auth.decide(
                req,
                params.get("decision") == "approve",
                params.get("api_key"),
                params.get("csrf_token", ""),
                request.cookies.get(COOKIE),
                base,
            )
        except ConsentRefused as exc:
            return _page(auth, request, req, 400, str(exc))
        return RedirectResponse(location, 303)  # 303: the browser follows a POST's answer with a GET

    return r
