"""Client ID Metadata Documents (the MCP authorization spec's preferred registration, 2025-11-25): a client
whose `client_id` is an https URL publishes its metadata there, and this server fetches it instead of asking
the client to register.

The document is fetched with the webhook SSRF rules (http/fetch.py: every address vetted, the connection
pinned, no redirects, at most 64 KiB, 5 s) when an authorization names the client, and kept as an ordinary
client record (so the token endpoint needs no fetch) for `CACHE_SECONDS`, then fetched again. Its
`client_id` must be the URL itself, its redirect URIs pass the same checks as a registration's, and it
is a public client (no secret: `token_endpoint_auth_method` "none"). Such clients count towards
`maxClients`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from paygate.http.fetch import FetchError, fetch_json
from paygate.oauth.clients import MAX_REDIRECT_URIS, redirect_uri_problem
from paygate.oauth.errors import OAuthError
from paygate.oauth.records import Doc, OAuthRecords
from paygate.oauth.tokens import parse_scopes

CACHE_SECONDS = 3600.0
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_NAME = 200
Fetch = Callable[..., Awaitable[Any]]


def is_metadata_url(client_id: str, allow_http: bool = False) -> bool:
    """An https URL with a path (not the bare origin), no query, fragment, credentials or dot segments."""
    try:
        parts = urlsplit(client_id)
    except ValueError:
        return False
    schemes = ("https", "http") if allow_http else ("https",)
    return (
        parts.scheme in schemes
        and bool(parts.hostname)
        and parts.path not in ("", "/")
        and not parts.query
        and not parts.fragment
        and parts.username is None
        and parts.password is None
        and not any(seg in (".", "..") for seg in parts.path.split("/"))
    )


class ClientDocuments:
    def __init__(
        self,
        records: OAuthRecords,
        scopes: list[str],
        max_clients: int,
        allow_private: bool = False,
        fetch: Fetch = fetch_json,
    ) -> None:
        self.records = records
        self.scopes = scopes
        self.max_clients = max_clients
        self.allow_private = allow_private  # labs and tests: loopback / private hosts, and http
        self.fetch = fetch

    async def ensure(self, client_id: str | None) -> None:
        """Make sure a URL client id has a fresh client record (fetching its document if needed); other
        client ids are left to the registry. OAuthError when the document is missing or unacceptable."""
        if not client_id or not is_metadata_url(client_id, self.allow_private):
            return
        known = self.records.client(client_id)
        now = time.time()
        if known is not None and now - float(known.get("fetchedAt", 0)) < CACHE_SECONDS:
            return
        if known is None and self.records.client_count() >= self.max_clients:
            raise OAuthError("invalid_client", f"this server holds at most {self.max_clients} clients")
        try:
            document = await self.fetch(client_id, allow_private=self.allow_private, max_bytes=MAX_DOCUMENT_BYTES)
        except FetchError as exc:
            raise OAuthError("invalid_client", f"client metadata document: {exc}") from exc
        self.records.put_client(client_id, self.record_of(client_id, document, now))

    def record_of(self, client_id: str, document: Any, now: float) -> Doc:
        def bad(why: str) -> OAuthError:
            return OAuthError("invalid_client", f"client metadata document: {why}")

        if not isinstance(document, dict):
            raise bad("not a JSON object")
        if document.get("client_id") != client_id:
            raise bad("its client_id is not the URL it was fetched from")
        uris = document.get("redirect_uris")
        if not isinstance(uris, list) or not 1 <= len(uris) <= MAX_REDIRECT_URIS:
            raise bad(f"redirect_uris: 1 to {MAX_REDIRECT_URIS} URIs")
        for uri in uris:
            problem = redirect_uri_problem(uri) if isinstance(uri, str) else "a redirect URI is a string"
            if problem:
                raise bad(problem)
        if document.get("token_endpoint_auth_method", "none") != "none" or "client_secret" in document:
            raise bad('a metadata-document client is public: token_endpoint_auth_method "none", no secret')
        grants = document.get("grant_types", ["authorization_code", "refresh_token"])
        if not isinstance(grants, list) or "authorization_code" not in grants:
            raise bad("grant_types must include authorization_code")
        name = document.get("client_name")
        scope = document.get("scope")
        if scope is not None and (not isinstance(scope, str) or parse_scopes(scope, self.scopes) is None):
            raise bad("scope: a scope this server does not offer")
        return {
            "id": client_id,
            "clientName": name[:MAX_NAME] if isinstance(name, str) else None,
            "redirectUris": uris,
            "grantTypes": [g for g in grants if g in ("authorization_code", "refresh_token")],
            "responseTypes": ["code"],
            "tokenEndpointAuthMethod": "none",
            "secretHash": None,
            "keyHash": None,
            "scope": scope,
            "createdAt": now,
            "fetchedAt": now,
            "metadataDocument": True,
        }
