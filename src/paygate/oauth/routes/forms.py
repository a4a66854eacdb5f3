"""What every OAuth route reads from a request: its parameters (form or JSON, never repeated), HTTP Basic
client credentials, its base URL, and how an `OAuthError` is answered."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse

from paygate.oauth.errors import OAuthError
from paygate.oauth.server import base_url

MAX_FIELDS = 50
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def base_of(request: Request, fallback: str) -> str:
    return base_url(request.url.scheme, request.headers.get("host"), fallback)


def pairs_to_params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:  # RFC 6749 §3.1: a parameter is sent at most once
            raise OAuthError("invalid_request", f"{name} is repeated")
        params[name] = value
    return params


async def body_params(request: Request) -> dict[str, str]:
    """A form (`application/x-www-form-urlencoded`, OAuth's own) or a JSON object of strings (the
    reference's curl examples)."""
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "application/json":
        try:
            data = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError as exc:
            raise OAuthError("invalid_request", "the body is not JSON") from exc
        if not isinstance(data, dict) or len(data) > MAX_FIELDS:
            raise OAuthError("invalid_request", "the body must be a JSON object of parameters")
        if not all(isinstance(v, str) for v in data.values()):
            raise OAuthError("invalid_request", "every parameter is a string")
        return data
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", "the body is not a form") from exc
    return pairs_to_params(pairs)


def query_params(request: Request) -> dict[str, str]:
    pairs = request.query_params.multi_items()
    if len(pairs) > MAX_FIELDS:
        raise OAuthError("invalid_request", "too many parameters")
    return pairs_to_params(pairs)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """HTTP Basic client credentials (RFC 6749 §2.3.1: each part form-encoded), or None."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "malformed Basic credentials") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials")
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def oauth_error(exc: OAuthError) -> JSONResponse:
    """RFC 6749 §5.2: 400, or 401 with a challenge for a client that failed to authenticate."""
    if exc.code == "invalid_client":
        return JSONResponse(exc.body(), 401, {**NO_STORE, "WWW-Authenticate": 'Basic realm="oauth"'})
    return JSONResponse(exc.body(), 400, NO_STORE)
