"""Credit reservations: POST /keys/reserve, /keys/reserve/commit, /keys/reserve/release; GET /keys/reserve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from paygate.api.common import ApiError, Body, KeyRefField, actor, find_key, require_admin
from paygate.keys.reservations import (
    DEFAULT_TTL,
    MAX_TTL,
    MIN_TTL,
    ReservationError,
    Reservations,
    reservation_view,
)
from paygate.keys.service import MAX_CREDITS
from paygate.runtime import Runtime

ReservationId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^rsv_[A-Za-z0-9_]+$")]
T = TypeVar("T")


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


def _guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ReservationError as exc:
        raise ApiError(exc.status, exc.message, **exc.extra) from exc


def router(rt: Runtime) -> APIRouter:
    service = Reservations(rt.store, rt.events.publish)
    service.recover()  # finish any move a crash interrupted, before anything reads balances
    service.follow_rotations()  # holds a crash left on a rotated key go to its replacement
    rt.tickers.append(service.tick)
    rt.keys.rekey_listeners.append(service.on_rekey)
    rt.events.subscribe(service.on_event, ("backup.restored",))  # a restore rewrites the documents: re-read them
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["reservations"])

    @r.post("/keys/reserve")
    async def reserve(body: ReserveBody, request: Request) -> dict[str, Any]:
        """Hold credits of a key's balance until committed, released, or the TTL runs out."""
        record = find_key(rt, body.key)
        doc, available = _guard(lambda: service.reserve(record, body.credits, body.ttl_seconds, body.memo,
                                                         actor(request)))
        return {**reservation_view(doc), "available": available}

    @r.post("/keys/reserve/commit")
    async def commit(body: CommitBody, request: Request) -> dict[str, Any]:
        """Spend a hold (all of it, or `credits` of it: the rest goes back to the balance)."""
        done = _guard(lambda: service.commit(body.reservation_id, body.credits, actor(request)))
        return {**reservation_view(done.doc), "committed": done.committed, "released": done.released,
                "balance": done.balance}

    @r.post("/keys/reserve/release")
    async def release(body: ReleaseBody, request: Request) -> dict[str, Any]:
        """Give a hold back to the key's balance."""
        done = _guard(lambda: service.release(body.reservation_id, actor(request)))
        return {**reservation_view(done.doc), "released": done.released, "balance": done.balance}

    @r.get("/keys/reserve")
    async def list_reservations(key: Annotated[str | None, Query(min_length=1, max_length=200)] = None
                          ) -> dict[str, Any]:
        """Active reservations, optionally of one key (key or alias)."""
        key_hash = find_key(rt, key).key_hash if key is not None else None
        docs = service.active(key_hash)
        return {"reservations": [reservation_view(d) for d in docs], "count": len(docs),
                "totalHeld": sum(int(d["credits"]) for d in docs)}

    return r
