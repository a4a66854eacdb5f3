"""Admin key endpoints: POST /keys, POST /topup, POST /keys/revoke."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from paygate.api.common import ApiError, Body, KeyRef, KeyRefField, require_admin
from paygate.services.keys import MAX_CREDITS, KeyConflict, KeyNotFound, key_view
from paygate.services.runtime import Runtime

ToolName = str
_MAX_LIST = 1000


class QuotaBody(Body):
    daily_call_limit: int = Field(default=0, ge=0)
    monthly_call_limit: int = Field(default=0, ge=0)
    daily_credit_limit: int = Field(default=0, ge=0)
    monthly_credit_limit: int = Field(default=0, ge=0)


class CreateKeyBody(Body):
    name: str = Field(default="unnamed", min_length=1, max_length=200)
    credits: int = Field(default=0, ge=0, le=MAX_CREDITS)
    allowed_tools: list[ToolName] = Field(default_factory=list, max_length=_MAX_LIST)
    denied_tools: list[ToolName] = Field(default_factory=list, max_length=_MAX_LIST)
    expires_in: int | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    expires_at: str | None = None
    quota: QuotaBody | None = None
    tags: dict[str, str] = Field(default_factory=dict, max_length=50)
    namespace: str = Field(default="default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    ip_allowlist: list[str] = Field(default_factory=list, max_length=100)
    spending_limit: int = Field(default=0, ge=0, le=MAX_CREDITS)

    @model_validator(mode="after")
    def _one_expiry(self) -> CreateKeyBody:
        if self.expires_in is not None and self.expires_at is not None:
            raise ValueError("give expiresIn or expiresAt, not both")
        return self


class KeyCredits(Body):
    key: KeyRefField
    credits: int = Field(gt=0, le=MAX_CREDITS)


def _parse_expiry(body: CreateKeyBody) -> float | None:
    if body.expires_in is not None:
        return time.time() + body.expires_in
    if body.expires_at is None:
        return None
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(body.expires_at.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, "Invalid request: expiresAt must be an ISO 8601 date-time") from exc
    if parsed.tzinfo is None:
        raise ApiError(400, "Invalid request: expiresAt needs a time zone (e.g. Z)")
    if parsed.timestamp() <= time.time():
        raise ApiError(400, "Invalid request: expiresAt is in the past")
    return parsed.timestamp()


def _validate_ips(entries: list[str]) -> None:
    import ipaddress

    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise ApiError(400, f"Invalid request: ipAllowlist entry {entry!r} is not an IP or CIDR") from exc


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["keys"])

    @r.post("/keys", status_code=201)
    def create_key(body: CreateKeyBody) -> JSONResponse:
        """Create an API key. The full key is returned once, here, and never again."""
        expires_at = _parse_expiry(body)
        _validate_ips(body.ip_allowlist)
        new = rt.keys.create(
            body.name, body.credits, allowed_tools=body.allowed_tools, denied_tools=body.denied_tools,
            expires_at=expires_at, quota=body.quota.model_dump(by_alias=True) if body.quota else None,
            tags=body.tags, namespace=body.namespace, ip_allowlist=body.ip_allowlist,
            spending_limit=body.spending_limit,
        )
        rt.events.publish("key.created", "admin", keyMasked=new.record.masked, name=new.record.name,
                          credits=new.record.credits, namespace=new.record.namespace)
        return JSONResponse({"key": new.raw, **key_view(new.record), "message": "Key created"}, status_code=201)

    @r.post("/topup")
    def topup(body: KeyCredits) -> dict[str, Any]:
        """Add credits to a key."""
        try:
            record = rt.keys.topup(body.key, body.credits)
        except KeyNotFound as exc:
            raise ApiError(404, str(exc)) from exc
        except KeyConflict as exc:
            raise ApiError(409, str(exc)) from exc
        rt.events.publish("key.topup", "admin", keyMasked=record.masked, creditsAdded=body.credits,
                          newBalance=record.credits)
        return {"message": f"Added {body.credits} credits", "keyMasked": record.masked,
                "creditsAdded": body.credits, "credits": record.credits, "newBalance": record.credits}

    @r.post("/keys/revoke")
    def revoke(body: KeyRef) -> dict[str, Any]:
        """Permanently revoke a key."""
        try:
            record = rt.keys.revoke(body.key)
        except KeyNotFound as exc:
            raise ApiError(404, str(exc)) from exc
        except KeyConflict as exc:
            raise ApiError(409, str(exc)) from exc
        rt.events.publish("key.revoked", "admin", keyMasked=record.masked)
        return {"message": "Key revoked", "keyMasked": record.masked, "revoked": True}

    return r
