"""Dynamic client registration (RFC 7591) and the admin's list of clients.

A client may be bound to an API key (the reference's `api_key`): its tokens then bill that key. Redirect
URIs must be https, or http on the loopback host only (a native app's local callback, RFC 8252 §7.3);
never a fragment or credentials in the URL. A client secret is shown once and stored as its digest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from paygate.core.keys import hash_key
from paygate.keys.service import KeyService
from paygate.oauth.errors import OAuthError
from paygate.oauth.records import Doc, OAuthRecords
from paygate.oauth.tokens import CLIENT_PREFIX, SECRET_PREFIX, digest, new_token, parse_scopes

MAX_REDIRECT_URIS = 10
MAX_URI_LENGTH = 2000
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic")
GRANT_TYPES = ("authorization_code", "refresh_token")
Publish = Callable[..., None]


def redirect_uri_problem(uri: str) -> str | None:
    if len(uri) > MAX_URI_LENGTH:
        return f"a redirect URI is at most {MAX_URI_LENGTH} characters"
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return f"not a URL: {uri[:100]!r}"
    if parts.fragment or "#" in uri:
        return "a redirect URI has no fragment"
    if parts.username is not None or parts.password is not None:
        return "a redirect URI carries no credentials"
    if not host or any(c.isspace() for c in uri):
        return f"not an absolute URL: {uri[:100]!r}"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and host in LOOPBACK:  # urlsplit gives the host in lower case, [::1] as ::1
        return None
    return "a redirect URI must be https, or http on localhost / 127.0.0.1"


@dataclass
class Registration:
    client_name: str | None
    redirect_uris: list[str]
    token_endpoint_auth_method: str = "client_secret_basic"  # RFC 7591 §2's default
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    response_types: list[str] = field(default_factory=lambda: ["code"])
    scope: str | None = None
    api_key: str | None = None


class ClientRegistry:
    def __init__(
        self, records: OAuthRecords, keys: KeyService, scopes: list[str], max_clients: int, publish: Publish
    ) -> None:
        self.records = records
        self.keys = keys
        self.scopes = scopes
        self.max_clients = max_clients
        self.publish = publish

    def register(self, reg: Registration, actor: str = "oauth") -> dict[str, Any]:
        """Check everything, then store the client; the answer (RFC 7591 §3.2.1) holds the only copy of
        its secret."""
        self._check(reg)
        key_hash = None
        if reg.api_key is not None:
            record = self.keys.store.get_key(hash_key(reg.api_key))
            if record is None or not record.active:
                raise OAuthError("invalid_client_metadata", "api_key: not an active API key")
            key_hash = record.key_hash
        if self.records.client_count() >= self.max_clients:
            raise OAuthError("invalid_client_metadata", f"this server holds at most {self.max_clients} clients")
        client_id = new_token(CLIENT_PREFIX)[:36]
        secret = None if reg.token_endpoint_auth_method == "none" else new_token(SECRET_PREFIX)
        now = time.time()
        doc: Doc = {
            "id": client_id,
            "clientName": reg.client_name,
            "redirectUris": reg.redirect_uris,
            "grantTypes": reg.grant_types,
            "responseTypes": reg.response_types,
            "tokenEndpointAuthMethod": reg.token_endpoint_auth_method,
            "secretHash": None if secret is None else digest(secret),
            "keyHash": key_hash,
            "scope": reg.scope,
            "createdAt": now,
        }
        self.records.put_client(client_id, doc)
        self.publish(
            "oauth.client_registered", actor, clientId=client_id, clientName=reg.client_name, bound=bool(key_hash)
        )
        answer: dict[str, Any] = {
            "client_id": client_id,
            "client_id_issued_at": int(now),
            "client_name": reg.client_name,
            "redirect_uris": reg.redirect_uris,
            "grant_types": reg.grant_types,
            "response_types": reg.response_types,
            "token_endpoint_auth_method": reg.token_endpoint_auth_method,
        }
        if reg.scope is not None:
            answer["scope"] = reg.scope
        if secret is not None:
            answer |= {"client_secret": secret, "client_secret_expires_at": 0}
        return answer

    def _check(self, reg: Registration) -> None:
        if not reg.redirect_uris or len(reg.redirect_uris) > MAX_REDIRECT_URIS:
            raise OAuthError("invalid_redirect_uri", f"redirect_uris: 1 to {MAX_REDIRECT_URIS} URIs")
        for uri in reg.redirect_uris:
            problem = redirect_uri_problem(uri)
            if problem:
                raise OAuthError("invalid_redirect_uri", problem)
        if reg.token_endpoint_auth_method not in AUTH_METHODS:
            raise OAuthError("invalid_client_metadata", f"token_endpoint_auth_method: one of {', '.join(AUTH_METHODS)}")
        if not set(reg.grant_types) <= set(GRANT_TYPES) or "authorization_code" not in reg.grant_types:
            raise OAuthError("invalid_client_metadata", "grant_types: authorization_code (and refresh_token) only")
        if reg.response_types != ["code"]:
            raise OAuthError("invalid_client_metadata", 'response_types: ["code"] only')
        if reg.scope is not None and parse_scopes(reg.scope, self.scopes) is None:
            raise OAuthError("invalid_client_metadata", "scope: a scope this server does not offer")

    def listing(self) -> list[dict[str, Any]]:
        """Every client for the admin, never a secret or the bound key's hash in full."""
        return [
            {
                "clientId": d["id"],
                "clientName": d.get("clientName"),
                "redirectUris": d.get("redirectUris", []),
                "grantTypes": d.get("grantTypes", []),
                "tokenEndpointAuthMethod": d.get("tokenEndpointAuthMethod"),
                "confidential": d.get("secretHash") is not None,
                "boundKey": (d["keyHash"][:12] + "…") if d.get("keyHash") else None,
                "scope": d.get("scope"),
                "createdAt": d.get("createdAt"),
            }
            for d in sorted(self.records.clients(), key=lambda d: float(d.get("createdAt", 0)))
        ]
