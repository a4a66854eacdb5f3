"""Scoped tokens: POST /tokens, POST /tokens/revoke, GET /tokens/revoked (credentials/scoped.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, find_key
from paygate.api.fields import ToolList
from paygate.core.values import iso_time
from paygate.credentials.scoped import DEFAULT_TTL, MAX_TOKEN_CHARS, MAX_TTL, ScopedTokens
from paygate.keys.service import KeyService


class TokenBody(Body):
    key: KeyRefField
    ttl: int = Field(default=DEFAULT_TTL, ge=1, le=MAX_TTL, description="seconds until it expires (at most 24 h)")
    allowed_tools: ToolList | None = Field(default=None, description="only these tools, within the key's own ACL")
    label: str | None = Field(default=None, min_length=1, max_length=200)


class RevokeBody(Body):
    token: str = Field(min_length=1, max_length=MAX_TOKEN_CHARS)
    reason: str | None = Field(default=None, min_length=1, max_length=500)


def router(guard: AdminGuard, keys: KeyService, tokens: ScopedTokens) -> APIRouter:
    r = guard.router("tokens")

    @r.post("/tokens", status_code=201)
    async def create_token(body: TokenBody, request: Request) -> dict[str, Any]:
        """Issue a scoped token for a key: it bills the key, may call only `allowedTools` (within the key's
        own ACL) and expires after `ttl` seconds. The token is shown here only."""
        key = find_key(keys, body.key)
        token, claims = tokens.issue(key, body.ttl, body.allowed_tools, body.label, actor(request))
        return {
            "token": token,
            "fingerprint": claims.fingerprint,
            "expiresAt": iso_time(claims.expires_at),
            "ttl": body.ttl,
            "parentKey": key.name,
            "allowedTools": sorted(claims.tools) if claims.tools is not None else None,
            "label": body.label,
            "message": "Use as X-API-Key or Bearer token on /mcp",
        }

    @r.post("/tokens/revoke")
    async def revoke_token(body: RevokeBody, request: Request) -> JSONResponse:
        """Revoke a scoped token before it expires: every instance refuses it from now on."""
        entry = tokens.revoke(body.token, body.reason, actor(request))
        shown = {k: entry.get(k) for k in ("fingerprint", "expiresAt", "revokedAt", "reason")}
        return JSONResponse({"message": "Token revoked", **shown})

    @r.get("/tokens/revoked")
    async def revoked_tokens() -> dict[str, Any]:
        """Every revoked token not yet expired, by fingerprint (the tokens themselves are never kept)."""
        entries = tokens.revoked()
        return {"count": len(entries), "entries": entries}

    return r
