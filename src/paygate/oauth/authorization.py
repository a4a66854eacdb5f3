"""The authorization endpoint (RFC 6749 §4.1, OAuth 2.1): a request is checked, shown to the key holder
on a consent page, and on approval answered with a single-use code at the client's redirect URI.

Errors follow RFC 6749 §4.1.2.1: an unknown client or a redirect URI that is not exactly one the client
registered is never redirected to (a 400 page); anything else goes back to the redirect URI as `error=`.
PKCE is S256 only; `resource` (RFC 8707) must be this gateway's. The consent form carries a CSRF token:
an HMAC of a random cookie (SameSite=Strict) and of the request's parameters, so a form posted from
another site (no cookie) or with other parameters is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from paygate.core.keys import hash_key
from paygate.keys.service import KeyService
from paygate.oauth.errors import ConsentRefused
from paygate.oauth.records import Doc, OAuthRecords
from paygate.oauth.server import OAuthServer, normal
from paygate.oauth.tokens import CODE_PREFIX, digest, new_token, parse_scopes, same, valid_challenge
from paygate.store.roles import Meta

PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "scope",
    "resource",
)
MAX_PARAM = 2048
CSRF_META = "oauth.csrfSecret"


class Unredirectable(Exception):
    """No trustworthy redirect URI to send the error to: shown as a 400 page."""


class RedirectedError(Exception):
    """An error the client hears about at its redirect URI (`location`)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass(frozen=True)
class AuthRequest:
    client: Doc
    redirect_uri: str
    state: str | None
    challenge: str
    scopes: list[str]
    resource: str
    params: dict[str, str]  # what the consent form carries back, exactly

    @property
    def client_id(self) -> str:
        return str(self.client["id"])

    @property
    def needs_key(self) -> bool:
        """Whether the holder must paste a key: always, unless the client is bound to one and confidential
        (only its registrant can redeem a code, with the secret)."""
        return not (self.client.get("keyHash") and self.client.get("secretHash"))


def with_query(uri: str, params: Mapping[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


class Authorizations:
    def __init__(self, records: OAuthRecords, keys: KeyService, server: OAuthServer, meta: Meta) -> None:
        self.records = records
        self.keys = keys
        self.server = server
        secret = meta.get_meta(CSRF_META)
        if secret is None:  # one secret per store: a fleet's instances all accept each other's forms
            secret = secrets.token_hex(32)
            meta.set_meta(CSRF_META, secret)
        self._csrf_key = bytes.fromhex(secret)
        self.now: Callable[[], float] = time.time

    def check(self, params: Mapping[str, str], base: str) -> AuthRequest:
        """The request, or Unredirectable / RedirectedError; nothing is stored either way."""
        if any(len(params.get(name) or "") > MAX_PARAM for name in PARAMS):
            raise Unredirectable(f"a parameter is over {MAX_PARAM} characters")
        client = self.records.client(params.get("client_id") or "")
        if client is None:
            raise Unredirectable("unknown client_id")
        registered: list[str] = client.get("redirectUris", [])
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None and len(registered) == 1:
            redirect_uri = registered[0]
        if redirect_uri is None or redirect_uri not in registered:  # exact string match, never a prefix
            raise Unredirectable("redirect_uri is not one this client registered")
        state = params.get("state")
        issuer = self.server.issuer(base)

        def refuse(code: str, description: str) -> RedirectedError:
            error = {"error": code, "error_description": description, "state": state, "iss": issuer}
            return RedirectedError(with_query(redirect_uri, error))

        if params.get("response_type") != "code":
            raise refuse("unsupported_response_type", "response_type must be code")
        challenge = params.get("code_challenge") or ""
        if not challenge:
            raise refuse("invalid_request", "code_challenge is required (PKCE)")
        if params.get("code_challenge_method") != "S256":
            raise refuse("invalid_request", "code_challenge_method must be S256")
        if not valid_challenge(challenge):
            raise refuse("invalid_request", "code_challenge is not a base64url SHA-256 digest")
        scopes = parse_scopes(params.get("scope") or client.get("scope"), self.server.scopes)
        if scopes is None:
            raise refuse("invalid_scope", "a requested scope is not offered")
        resource = self.server.resource(base)
        if params.get("resource") and normal(params["resource"]) != normal(resource):
            raise refuse("invalid_target", "resource is not this gateway")
        carried = {name: params[name] for name in PARAMS if params.get(name) is not None}
        carried["redirect_uri"] = redirect_uri
        return AuthRequest(client, redirect_uri, state, challenge, scopes, resource, carried)

    # CSRF ---------------------------------------------------------------------
    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(32)

    def csrf_token(self, cookie: str, request: AuthRequest) -> str:
        bound = "\n".join(f"{name}={request.params.get(name, '')}" for name in PARAMS)
        return hmac.new(self._csrf_key, f"{cookie}\n{bound}".encode(), hashlib.sha256).hexdigest()

    # the decision ---------------------------------------------------------------
    def decide(
        self, request: AuthRequest, approve: bool, api_key: str | None, csrf: str, cookie: str | None, base: str
    ) -> str:
        """Where to send the browser: the redirect URI with a code (approved) or `access_denied`.
        ConsentRefused when the form cannot be accepted (nothing issued)."""
        if not cookie or not same(csrf, self.csrf_token(cookie, request)):
            raise ConsentRefused("This form has expired or was not sent from this page: reload it and try again.")
        issuer = self.server.issuer(base)
        if not approve:
            denied = {"error": "access_denied", "error_description": "the key holder declined", "state": request.state}
            return with_query(request.redirect_uri, {**denied, "iss": issuer})
        key_hash = self._key_of(request, api_key)
        code = new_token(CODE_PREFIX)
        code_hash = digest(code)
        now = self.now()
        self.records.put_code(
            code_hash,
            {
                "id": code_hash,
                "clientId": request.client_id,
                "redirectUri": request.redirect_uri,
                "challenge": request.challenge,
                "scopes": request.scopes,
                "resource": request.resource,
                "keyHash": key_hash,
                "status": "fresh",
                "createdAt": now,
                "expiresAt": now + self.server.settings.authorization_code_ttl,
            },
        )
        return with_query(request.redirect_uri, {"code": code, "state": request.state, "iss": issuer})

    def _key_of(self, request: AuthRequest, api_key: str | None) -> str:
        bound = request.client.get("keyHash")
        api_key = (api_key or "").strip() or None
        if api_key is None:
            if request.needs_key:
                raise ConsentRefused("Paste the API key this client's calls will be billed to.")
            return str(bound)
        record = self.keys.store.get_key(hash_key(api_key))
        now = self.now()
        if record is None or not record.active or record.suspended or (record.expires_at and record.expires_at <= now):
            raise ConsentRefused("That is not an active API key.")
        if bound and not same(record.key_hash, str(bound)):
            raise ConsentRefused("This client is bound to another API key.")
        return record.key_hash
