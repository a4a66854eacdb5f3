"""Admin key endpoints: POST /keys (optionally from a template), POST /topup, POST /keys/revoke.

Routes are `async def` on purpose: each does one short SQLite write, and
running on the event loop keeps it from interleaving with the hot path's
group-committed charges on the shared connection (a threadpool route could).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from paygate.api.common import AdminGuard, KeyRef, actor
from paygate.keys.routes.schemas import CreateKeyBody, KeyCredits, create_key
from paygate.keys.service import KeyService, key_view
from paygate.keys.templates import TemplateService


def router(guard: AdminGuard, keys: KeyService, templates: TemplateService) -> APIRouter:
    r = guard.router("keys")

    @r.post("/keys", status_code=201)
    async def create(body: CreateKeyBody, request: Request) -> JSONResponse:
        """Create an API key, optionally from a template. The full key is returned once, here, and never again."""
        new = create_key(keys, templates, body, actor(request))
        return JSONResponse(
            {"key": new.raw, **key_view(new.record), "template": body.template, "message": "Key created"},
            status_code=201,
        )

    @r.post("/topup")
    async def topup(body: KeyCredits, request: Request) -> dict[str, Any]:
        """Add credits to a key."""
        record = keys.topup(body.key, body.credits, actor(request))
        return {
            "message": f"Added {body.credits} credits",
            "keyMasked": record.masked,
            "creditsAdded": body.credits,
            "credits": record.credits,
            "newBalance": record.credits,
        }

    @r.post("/keys/revoke")
    async def revoke(body: KeyRef, request: Request) -> dict[str, Any]:
        """Permanently revoke a key."""
        record = keys.revoke(body.key, actor(request))
        return {"message": "Key revoked", "keyMasked": record.masked, "revoked": True}

    return r
