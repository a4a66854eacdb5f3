"""Request signing: GET/POST/DELETE /admin/signing (policy/signing.py; docs/access-rules.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, find_key
from paygate.core.domain_errors import Invalid
from paygate.keys.service import KeyService
from paygate.policy.signing import Signing


class SigningBody(Body):
    key: KeyRefField | None = None
    grace_seconds: int = Field(default=300, ge=0, le=7 * 86_400)
    tolerance_seconds: int | None = Field(default=None, ge=5, le=3600)


def router(guard: AdminGuard, keys: KeyService, signing: Signing) -> APIRouter:
    r = guard.router("access")

    @r.get("/admin/signing")
    async def show() -> dict[str, Any]:
        """The keys that must sign their requests (never their secrets) and the tolerance window."""
        return signing.view()

    @r.post("/admin/signing")
    async def issue(body: SigningBody, request: Request) -> dict[str, Any]:
        """Give a key a signing secret, or rotate it (the new secret is shown once); or set the tolerance."""
        if body.key is None and body.tolerance_seconds is None:
            raise Invalid("Invalid request: give key (to issue or rotate its secret) or toleranceSeconds")
        who = actor(request)
        out: dict[str, Any] = {}
        if body.key is not None:
            record = find_key(keys, body.key)
            if not record.active:
                raise Invalid("Invalid request: the key is revoked")
            out = signing.issue(record, who, body.grace_seconds)
        if body.tolerance_seconds is not None:
            signing.set_tolerance(body.tolerance_seconds, who)
        return {**out, "toleranceSeconds": signing.tolerance}

    @r.delete("/admin/signing")
    async def revoke(request: Request, key: Annotated[str, Query(min_length=1, max_length=200)]) -> dict[str, Any]:
        """The key no longer needs to sign its requests (its secret is forgotten)."""
        record = find_key(keys, key)
        signing.revoke(record, actor(request))
        return {"keyMasked": record.masked, "signing": False}

    return r
