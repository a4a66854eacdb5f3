"""Credit reservations: POST /keys/reserve, /keys/reserve/commit, /keys/reserve/release; GET /keys/reserve."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, find_key
from paygate.core.documents import readable
from paygate.core.values import MAX_CREDITS
from paygate.keys.reservations import (
    DEFAULT_TTL,
    KIND,
    MAX_TTL,
    MIN_TTL,
    Reservations,
    reservation_view,
)
from paygate.keys.service import KeyService

ReservationId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^rsv_[A-Za-z0-9_]+$")]


class ReserveBody(Body):
    key: KeyRefField
    credits: int = Field(gt=0, le=MAX_CREDITS)
    ttl_seconds: int = Field(default=DEFAULT_TTL, ge=MIN_TTL, le=MAX_TTL)
    memo: str | None = Field(default=None, max_length=500)


class CommitBody(Body):
    reservation_id: ReservationId
    credits: int | None = Field(default=None, ge=0, le=MAX_CREDITS)  # partial commit; the rest is released


class ReleaseBody(Body):
    reservation_id: ReservationId


def router(guard: AdminGuard, keys: KeyService, service: Reservations) -> APIRouter:
    r = guard.router("reservations")

    @r.post("/keys/reserve")
    async def reserve(body: ReserveBody, request: Request) -> dict[str, Any]:
        """Hold credits of a key's balance until committed, released, or the TTL runs out."""
        record = find_key(keys, body.key)
        doc, available = service.reserve(record, body.credits, body.ttl_seconds, body.memo, actor(request))
        return {**reservation_view(doc), "available": available}

    @r.post("/keys/reserve/commit")
    async def commit(body: CommitBody, request: Request) -> dict[str, Any]:
        """Spend a hold (all of it, or `credits` of it: the rest goes back to the balance)."""
        done = service.commit(body.reservation_id, body.credits, actor(request))
        return {
            **reservation_view(done.doc),
            "committed": done.committed,
            "released": done.released,
            "balance": done.balance,
        }

    @r.post("/keys/reserve/release")
    async def release(body: ReleaseBody, request: Request) -> dict[str, Any]:
        """Give a hold back to the key's balance."""
        done = service.release(body.reservation_id, actor(request))
        return {**reservation_view(done.doc), "released": done.released, "balance": done.balance}

    @r.get("/keys/reserve")
    async def list_reservations(
        key: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    ) -> dict[str, Any]:
        """Active reservations, optionally of one key (key or alias)."""
        key_hash = find_key(keys, key).key_hash if key is not None else None
        views = readable(KIND, service.active(key_hash), reservation_view)
        return {"reservations": views, "count": len(views), "totalHeld": sum(v["credits"] for v in views)}

    return r
