"""POST /portal/rotate: a key holder replaces their own key (the portal's rotation, docs/portal.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from paygate.asgi import api_key_from, header_map
from paygate.billing.usage import client_record
from paygate.keys.lifecycle import KeyLifecycle
from paygate.keys.service import KeyService, key_view


def client_router(keys: KeyService, lifecycle: KeyLifecycle) -> APIRouter:
    r = APIRouter(tags=["client"])

    @r.post("/portal/rotate")
    async def rotate_own_key(request: Request) -> dict[str, Any]:
        """Replace the caller's own key (X-API-Key or Bearer with the key itself: a token that stands for a
        key cannot) with a new one that keeps everything the old one had; the old key stops working at
        once. The new key is in this answer only."""
        old = client_record(keys.store, api_key_from(header_map(request.scope)))
        old_masked = old.masked
        new = lifecycle.rotate(old, old_masked)  # the actor of a key holder's own action: the key, masked
        return {"message": "Key rotated", "newKey": new.raw, "oldKeyMasked": old_masked, **key_view(new.record)}

    return r
