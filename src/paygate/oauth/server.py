"""Who this authorization server is (issuer, resource) and what it publishes about itself: the metadata
documents of RFC 8414 and RFC 9728. The issuer and resource come from config, else from the request's
own base URL (scheme and Host), so a gateway reached by one name needs no configuration."""

from __future__ import annotations

import re
from typing import Any

from paygate.config_oauth import OAuthSettings

_HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,300}$")  # a Host header fit to build a URL from
MCP_PATH = "/mcp"


def base_url(scheme: str, host: str | None, fallback: str) -> str:
    """`scheme://host` of a request, or `fallback` when its Host header is missing or odd."""
    if not host or not _HOST.match(host):
        return fallback
    return f"{'https' if scheme in ('https', 'wss') else 'http'}://{host.lower()}"


def normal(url: str) -> str:
    """A resource or issuer URL for comparison: no trailing slash, scheme and host in lower case."""
    url = url.rstrip("/")
    head, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{head.lower()}{sep}{host.lower()}{slash}{path}"


class OAuthServer:
    def __init__(self, settings: OAuthSettings, other_servers: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.scopes = list(settings.scopes)
        self.other_servers = other_servers  # authorization servers elsewhere whose tokens /mcp accepts too

    def issuer(self, base: str) -> str:
        return self.settings.issuer or base

    def resource(self, base: str) -> str:
        """This gateway's resource identifier (RFC 8707): the audience of every token it issues."""
        return self.settings.resource or self.issuer(base) + MCP_PATH

    @property
    def fixed_resource(self) -> str | None:
        """The resource when config fixes it (a token's audience can then be checked without a request)."""
        if self.settings.resource:
            return normal(self.settings.resource)
        return normal(self.settings.issuer + MCP_PATH) if self.settings.issuer else None

    def resource_metadata_url(self, base: str) -> str:
        return self.issuer(base) + "/.well-known/oauth-protected-resource"

    def authorization_server_metadata(self, base: str) -> dict[str, Any]:
        issuer = self.issuer(base)
        return {
            "issuer": issuer,
            "authorization_endpoint": issuer + "/oauth/authorize",
            "token_endpoint": issuer + "/oauth/token",
            "registration_endpoint": issuer + "/oauth/register",
            "revocation_endpoint": issuer + "/oauth/revoke",
            "scopes_supported": self.scopes,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "client_id_metadata_document_supported": self.settings.client_metadata_documents,
        }

    def protected_resource_metadata(self, base: str) -> dict[str, Any]:
        return {
            "resource": self.resource(base),
            "authorization_servers": [self.issuer(base), *self.other_servers],
            "scopes_supported": self.scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": "PayGate MCP gateway",
        }
