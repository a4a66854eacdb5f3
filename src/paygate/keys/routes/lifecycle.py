"""Key lifecycle: POST /keys/rotate, POST /keys/clone, POST /keys/transfer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from paygate.api.common import ApiError, Body, KeyRef, KeyRefField, actor, find_key, require_admin
from paygate.core.values import MAX_CREDITS
from paygate.keys import lifecycle
from paygate.keys.routes.crud import NAMESPACE_PATTERN
from paygate.keys.service import KeyConflict, key_view
from paygate.policy.routes.key_policy import Tags
from paygate.runtime import Runtime


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


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["key-lifecycle"])
    # Rate windows and quota counters follow a rotated key like every other follower: a failing
    # follower is logged, never turns the finished (durable) rotation into an error answer.
    rt.keys.rekey_listeners.append(rt.billing.move_counters)

    @r.post("/keys/rotate")
    async def rotate(body: KeyRef, request: Request) -> dict[str, Any]:
        """Replace a key with a new one that keeps all its state; the old key stops working at once."""
        old = find_key(rt, body.key)
        old_masked = old.masked
        try:
            new = lifecycle.rotate(rt.keys, old)
        except KeyConflict as exc:
            raise ApiError(409, str(exc)) from exc
        rt.events.publish("key.rotated", actor(request), oldKeyMasked=old_masked, newKeyMasked=new.record.masked,
                          name=new.record.name, credits=new.record.credits)
        return {"message": "Key rotated", "newKey": new.raw, "oldKeyMasked": old_masked, **key_view(new.record)}

    @r.post("/keys/clone", status_code=201)
    async def clone(body: CloneBody, request: Request) -> JSONResponse:
        """A new key with the same configuration and fresh counters (alias and suspension not copied)."""
        source = find_key(rt, body.key)
        try:
            new = lifecycle.clone(rt.keys, source, name=body.name, credits=body.credits, tags=body.tags,
                                  namespace=body.namespace)
        except KeyConflict as exc:
            raise ApiError(409, str(exc)) from exc
        rt.events.publish("key.cloned", actor(request), keyMasked=new.record.masked, sourceKeyMasked=source.masked,
                          name=new.record.name, credits=new.record.credits)
        return JSONResponse({"message": "Key cloned", "key": new.raw, "clonedFrom": source.masked,
                             **key_view(new.record)}, status_code=201)

    @r.post("/keys/transfer")
    async def transfer(body: TransferBody, request: Request) -> dict[str, Any]:
        """Move credits from one key to another atomically, with a ledger entry on each side."""
        source, target = find_key(rt, body.from_), find_key(rt, body.to)
        try:
            moved = lifecycle.transfer(rt.keys, source, target, body.credits, body.memo)
        except (lifecycle.InvalidMove, lifecycle.InsufficientCredits) as exc:
            raise ApiError(400, str(exc)) from exc
        except KeyConflict as exc:
            raise ApiError(409, str(exc)) from exc
        rt.events.publish("key.credits_transferred", actor(request), fromKeyMasked=source.masked,
                          toKeyMasked=target.masked, credits=body.credits, fromBalance=moved.source_balance,
                          toBalance=moved.target_balance, memo=body.memo)
        return {"transferred": body.credits,
                "from": {"keyMasked": source.masked, "balance": moved.source_balance},
                "to": {"keyMasked": target.masked, "balance": moved.target_balance},
                "memo": body.memo, "message": f"Transferred {body.credits} credits"}

    return r
