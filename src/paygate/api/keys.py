"""Admin key endpoints: POST /keys (optionally from a template), POST /topup, POST /keys/revoke.

Routes are `async def` on purpose: each does one short SQLite write, and
running on the event loop keeps it from interleaving with the hot path's
group-committed charges on the shared connection (a threadpool route could).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError, model_validator

from paygate.api.common import ApiError, Body, KeyRef, KeyRefField, actor, require_admin
from paygate.services.keys import MAX_CREDITS, KeyConflict, KeyNotFound, NewKey, key_view
from paygate.services.runtime import Runtime
from paygate.services.templates import TemplateService, key_defaults

ToolName = str
MAX_LIST = 1000
MAX_TAGS = 50
TagName = Annotated[str, Field(min_length=1, max_length=100)]
TagValue = Annotated[str, Field(max_length=100)]
Tags = Annotated[dict[TagName, TagValue], Field(max_length=MAX_TAGS)]
NAMESPACE_PATTERN = r"^[A-Za-z0-9_.-]+$"
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"  # template names and aliases
# Template fields that are `POST /keys` fields of the same name (expiryTtlSeconds and autoTopup map specially).
TEMPLATE_KEY_FIELDS = frozenset({"credits", "allowedTools", "deniedTools", "quota", "ipAllowlist", "spendingLimit",
                                 "tags", "namespace"})


class QuotaBody(Body):
    daily_call_limit: int = Field(default=0, ge=0)
    monthly_call_limit: int = Field(default=0, ge=0)
    daily_credit_limit: int = Field(default=0, ge=0)
    monthly_credit_limit: int = Field(default=0, ge=0)


class CreateKeyBody(Body):
    name: str = Field(default="unnamed", min_length=1, max_length=200)
    credits: int = Field(default=0, ge=0, le=MAX_CREDITS)
    allowed_tools: list[ToolName] = Field(default_factory=list, max_length=MAX_LIST)
    denied_tools: list[ToolName] = Field(default_factory=list, max_length=MAX_LIST)
    expires_in: int | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    expires_at: str | None = None
    quota: QuotaBody | None = None
    tags: Tags = Field(default_factory=dict)
    namespace: str = Field(default="default", min_length=1, max_length=64, pattern=NAMESPACE_PATTERN)
    ip_allowlist: list[str] = Field(default_factory=list, max_length=100)
    spending_limit: int = Field(default=0, ge=0, le=MAX_CREDITS)
    template: str | None = Field(default=None, pattern=NAME_PATTERN, description="a key template's name")

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


def validate_ips(entries: list[str]) -> None:
    import ipaddress

    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise ApiError(400, f"Invalid request: ipAllowlist entry {entry!r} is not an IP or CIDR") from exc


def _apply_template(rt: Runtime, body: CreateKeyBody) -> tuple[CreateKeyBody, dict[str, Any] | None]:
    """The body with the template's fields as defaults (explicit fields win), and its autoTopup."""
    if body.template is None:
        return body, None
    template = TemplateService(rt.store).get(body.template)
    if template is None:
        raise ApiError(404, f'Template "{body.template}" not found')
    defaults = key_defaults(template)
    given = body.model_dump(by_alias=True, exclude_unset=True)
    merged = {k: v for k, v in defaults.items() if k in TEMPLATE_KEY_FIELDS}
    ttl = defaults.get("expiryTtlSeconds") or 0
    if ttl and "expiresIn" not in given and "expiresAt" not in given:
        merged["expiresIn"] = ttl
    merged.update(given)
    try:
        return CreateKeyBody.model_validate(merged), defaults.get("autoTopup")
    except ValidationError as exc:  # a template saved under older limits
        raise ApiError(400, f"Invalid request: template {body.template!r} gives {exc.errors()[0]['msg']}") from exc


def create_key(rt: Runtime, body: CreateKeyBody) -> NewKey:
    """Validate and create one key (shared with POST /keys/bulk); an ApiError creates nothing."""
    body, auto_topup = _apply_template(rt, body)
    expires_at = _parse_expiry(body)
    validate_ips(body.ip_allowlist)
    return rt.keys.create(
        body.name, body.credits, allowed_tools=body.allowed_tools, denied_tools=body.denied_tools,
        expires_at=expires_at, quota=body.quota.model_dump(by_alias=True) if body.quota else None,
        tags=body.tags, namespace=body.namespace, ip_allowlist=body.ip_allowlist,
        spending_limit=body.spending_limit, auto_topup=auto_topup,
    )


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["keys"])

    @r.post("/keys", status_code=201)
    async def create(body: CreateKeyBody, request: Request) -> JSONResponse:
        """Create an API key, optionally from a template. The full key is returned once, here, and never again."""
        new = create_key(rt, body)
        rt.events.publish("key.created", actor(request), keyMasked=new.record.masked, name=new.record.name,
                          credits=new.record.credits, namespace=new.record.namespace, template=body.template)
        return JSONResponse({"key": new.raw, **key_view(new.record), "template": body.template,
                             "message": "Key created"}, status_code=201)

    @r.post("/topup")
    async def topup(body: KeyCredits, request: Request) -> dict[str, Any]:
        """Add credits to a key."""
        try:
            record = rt.keys.topup(body.key, body.credits)
        except KeyNotFound as exc:
            raise ApiError(404, str(exc)) from exc
        except KeyConflict as exc:
            raise ApiError(409, str(exc)) from exc
        rt.events.publish("key.topup", actor(request), keyMasked=record.masked, creditsAdded=body.credits,
                          newBalance=record.credits)
        return {"message": f"Added {body.credits} credits", "keyMasked": record.masked,
                "creditsAdded": body.credits, "credits": record.credits, "newBalance": record.credits}

    @r.post("/keys/revoke")
    async def revoke(body: KeyRef, request: Request) -> dict[str, Any]:
        """Permanently revoke a key."""
        try:
            record = rt.keys.revoke(body.key)
        except KeyNotFound as exc:
            raise ApiError(404, str(exc)) from exc
        except KeyConflict as exc:
            raise ApiError(409, str(exc)) from exc
        rt.events.publish("key.revoked", actor(request), keyMasked=record.masked)
        return {"message": "Key revoked", "keyMasked": record.masked, "revoked": True}

    return r
