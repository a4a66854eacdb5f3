"""GET /.well-known/oauth-authorization-server (RFC 8414) and /.well-known/oauth-protected-resource
(RFC 9728; also at its path-suffixed name for the /mcp resource, where MCP clients look second)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from paygate.oauth.routes.forms import base_of
from paygate.oauth.server import OAuthServer


def router(server: OAuthServer, fallback_base: str) -> APIRouter:
    r = APIRouter(tags=["oauth"])

    @r.get("/.well-known/oauth-authorization-server")
    async def authorization_server(request: Request) -> dict[str, Any]:
        """OAuth 2.1 authorization server metadata (RFC 8414)."""
        return server.authorization_server_metadata(base_of(request, fallback_base))

    @r.get("/.well-known/oauth-protected-resource")
    async def protected_resource(request: Request) -> dict[str, Any]:
        """Protected resource metadata (RFC 9728): this gateway's resource, its authorization server, scopes."""
        return server.protected_resource_metadata(base_of(request, fallback_base))

    @r.get("/.well-known/oauth-protected-resource/mcp")
    async def protected_resource_mcp(request: Request) -> dict[str, Any]:
        """The same document at the path-suffixed name of the /mcp resource (RFC 9728 §3.1)."""
        return server.protected_resource_metadata(base_of(request, fallback_base))

    return r
