"""Key lifecycle: POST /keys/rotate, POST /keys/clone, POST /keys/transfer."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field, field_validator

from paygate.api.common import AdminGuard, Body, KeyRef, KeyRefField, actor, find_key
from paygate.api.fields import NAMESPACE_PATTERN, Tags
from paygate.core.values import MAX_CREDITS
from paygate.keys.lifecycle import KeyLifecycle
from paygate.keys.service import KeyService, key_view


class CloneBody(Body):
    key: KeyRefField
    name: str | None = Field(default=None, min_length=1, max_length=200)
    credits: int | None = Field(default=None, ge=0, le=MAX_CREDITS)
    tags: Tags | None = None
    namespace: str | None = Field(default=None, min_length=1, max_length=64, pattern=NAMESPACE_PATTERN)


class TransferBody(Body):
    from_: KeyRefField = Field(alias="from")
    to: KeyRefField
    credits: int = Field(gt=0, le=MAX_CREDITS)
    memo: str | None = Field(default=None, max_length=500)

    @field_validator("credits", mode="before")
    @classmethod
    def _floored(cls, v: Any) -> Any:
        """Fractional credits are floored, as the reference documents (2.9 moves 2; 0.5 moves nothing: 400)."""
        return math.floor(v) if isinstance(v, float) and math.isfinite(v) else v


def router(guard: AdminGuard, keys: KeyService, lifecycle: KeyLifecycle) -> APIRouter:
    r = guard.router("key-lifecycle")

    @r.post("/keys/rotate")
    async def rotate(body: KeyRef, request: Request) -> dict[str, Any]:
        """Replace a key with a new one that keeps all its state; the old key stops working at once."""
        old = find_key(keys, body.key)
        old_masked = old.masked
        new = lifecycle.rotate(old, actor(request))
        return {"message": "Key rotated", "newKey": new.raw, "oldKeyMasked": old_masked, **key_view(new.record)}

    @r.post("/keys/clone", status_code=201)
    async def clone(body: CloneBody, request: Request) -> JSONResponse:
        """A new key with the same configuration and fresh counters (alias and suspension not copied)."""
        source = find_key(keys, body.key)
        new = lifecycle.clone(
            source, actor(request), name=body.name, credits=body.credits, tags=body.tags, namespace=body.namespace
        )
        return JSONResponse(
            {"message": "Key cloned", "key": new.raw, "clonedFrom": source.masked, **key_view(new.record)},
            status_code=201,
        )

    @r.post("/keys/transfer")
    async def transfer(body: TransferBody, request: Request) -> dict[str, Any]:
        """Move credits from one key to another atomically, with a ledger entry on each side."""
        source, target = find_key(keys, body.from_), find_key(keys, body.to)
        moved = lifecycle.transfer(source, target, body.credits, body.memo, actor(request))
        return {
            "transferred": body.credits,
            "from": {"keyMasked": source.masked, "balance": moved.source_balance},
            "to": {"keyMasked": target.masked, "balance": moved.target_balance},
            "memo": body.memo,
            "message": f"Transferred {body.credits} credits",
        }

    return r
