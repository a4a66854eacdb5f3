"""Access tokens on /mcp: the `pg_at_` token kind (credentials/resolver.py's `TokenKind`) and the 401
challenge of the MCP authorization spec (2025-11-25) that lets a client discover this server.

Resolving a token is a digest and one dict lookup in the store's mirror of the `oauth_token` documents:
no store round trip per call, and another instance's revocation arrives through the store's own sync.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from paygate.credentials.resolver import Credential, Credentials, Rejected
from paygate.oauth.records import OAuthRecords
from paygate.oauth.server import OAuthServer, base_url, normal
from paygate.oauth.tokens import ACCESS_PREFIX, digest, tools_of

Headers = dict[bytes, bytes]
_SCOPE_SAFE = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")  # what a `tools:<name>` scope may hold (config_oauth.py)


class AccessTokens:
    """The `pg_at_` token kind: the key a token bills, narrowed to the tools its scopes name."""

    prefix = ACCESS_PREFIX

    def __init__(self, records: OAuthRecords, server: OAuthServer) -> None:
        self.records = records
        self.server = server

    def resolve(self, raw: str, now: float) -> Credential | Rejected:
        token_hash = digest(raw)
        doc = self.records.token(token_hash)
        if doc is None or doc.get("type") != "access":
            return Rejected("invalid_token", "unknown access token", bearer=True)
        if doc.get("revoked"):
            return Rejected("token_revoked", "access token revoked", bearer=True)
        if float(doc["expiresAt"]) <= now:
            return Rejected("token_expired", "access token expired", bearer=True)
        fixed = self.server.fixed_resource
        if fixed is not None and doc.get("audience") != fixed:
            return Rejected("invalid_token", "access token issued for another resource", bearer=True)
        # the owner a session is bound to: the grant (the family, the SHA-256 of its authorization code),
        # not this token, so a session outlives the refreshes of its grant and ends with its revocation;
        # prefixed, so that no credential's own hash (the code's, presented as a key) can ever equal it
        owner = "oauth-grant:" + str(doc["family"])
        return Credential(str(doc["keyHash"]), tools_of(list(doc["scopes"])), "oauth", owner)

    def audience(self, raw: str) -> str | None:
        doc = self.records.token(digest(raw))
        return None if doc is None else str(doc.get("audience"))


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")


class BearerChallenge:
    """For McpEndpoint: the `WWW-Authenticate` value (and a description) of a request /mcp must answer
    with 401: no credential at all, or an OAuth bearer token that is refused. A plain API key, good or
    bad, goes on as before (its denial is the gate's)."""

    def __init__(self, credentials: Credentials, tokens: AccessTokens, server: OAuthServer, fallback_base: str) -> None:
        self.credentials = credentials
        self.tokens = tokens
        self.server = server
        self.fallback_base = fallback_base
        self.now: Callable[[], float] = time.time

    def __call__(self, scheme: str, headers: Headers, raw_key: str | None) -> tuple[bytes, str] | None:
        base = base_url(scheme, headers.get(b"host", b"").decode("latin-1"), self.fallback_base)
        metadata = self.server.resource_metadata_url(base)
        if raw_key is None:
            return f'Bearer resource_metadata="{metadata}"'.encode(), "authorization required"
        result = self.credentials.resolve(raw_key, self.now())
        problem: str | None = None
        if isinstance(result, Rejected):
            if not result.bearer:
                return None
            problem = result.detail or result.reason
        elif (
            result is not None
            and result.kind == "oauth"
            and raw_key.startswith(ACCESS_PREFIX)  # this server's own token (another's has its own audience)
            and self.server.fixed_resource is None  # the audience against this request's own base URL
            and self.tokens.audience(raw_key) != normal(self.server.resource(base))
        ):
            problem = "access token issued for another resource"
        if problem is None:
            return None
        value = f'Bearer error="invalid_token", error_description="{_quoted(problem)}", resource_metadata="{metadata}"'
        return value.encode(), problem

    def insufficient_scope(self, scheme: str, headers: Headers, tool: str) -> bytes:
        """The 403's challenge for a call outside the token's scopes: the scope that would cover it."""
        base = base_url(scheme, headers.get(b"host", b"").decode("latin-1"), self.fallback_base)
        metadata = self.server.resource_metadata_url(base)
        if not _SCOPE_SAFE.match(tool):  # a name no scope can spell (or one unfit for a header): no hint
            return f'Bearer error="insufficient_scope", resource_metadata="{metadata}"'.encode()
        needed = f"tools:{tool}"
        return (
            f'Bearer error="insufficient_scope", scope="{needed}", '
            f'error_description="the token\'s scopes do not cover {needed}", resource_metadata="{metadata}"'
        ).encode()
