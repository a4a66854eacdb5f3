"""Admin key endpoints: POST /keys (optionally from a template), POST /topup, POST /keys/revoke.

Routes are `async def` on purpose: each does one short SQLite write, and
running on the event loop keeps it from interleaving with the hot path's
group-committed charges on the shared connection (a threadpool route could).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError, model_validator

from paygate.api.common import ApiError, Body, KeyRef, KeyRefField, actor, require_admin
from paygate.core.records import KeyRecord
from paygate.core.values import MAX_CREDITS
from paygate.keys.service import KeyConflict, KeyNotFound, NewKey, key_view
from paygate.keys.templates import TemplateService, key_defaults
from paygate.policy.routes.key_policy import MAX_EXPIRY_SECONDS, IpList, QuotaLimits, ToolList, parse_expires_at
from paygate.policy.routes.key_policy import Tags as Tags  # re-exported: key_io imports it from here
from paygate.runtime import Runtime

# Key fields share their types with the policy endpoints (/keys/acl, /keys/ip, /keys/quota, …): a key
# made with POST /keys or from a template holds exactly what those would have stored.
MAX_TAGS = 50
TagName = Annotated[str, Field(min_length=1, max_length=100)]
TagValue = Annotated[str, Field(max_length=100)]
NAMESPACE_PATTERN = r"^[A-Za-z0-9_.-]+$"
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"  # template names and aliases
# Template fields that are `POST /keys` fields of the same name (expiryTtlSeconds and autoTopup map specially).
TEMPLATE_KEY_FIELDS = frozenset({"credits", "allowedTools", "deniedTools", "quota", "ipAllowlist", "spendingLimit",
                                 "tags", "namespace"})


class CreateKeyBody(Body):
    name: str = Field(default="unnamed", min_length=1, max_length=200)
    credits: int = Field(default=0, ge=0, le=MAX_CREDITS)
    allowed_tools: ToolList = Field(default_factory=list)
    denied_tools: ToolList = Field(default_factory=list)
    expires_in: int | None = Field(default=None, gt=0, le=MAX_EXPIRY_SECONDS)
    expires_at: str | None = Field(default=None, max_length=64)
    quota: QuotaLimits | None = None
    tags: Tags = Field(default_factory=dict)
    namespace: str = Field(default="default", min_length=1, max_length=64, pattern=NAMESPACE_PATTERN)
    ip_allowlist: IpList = Field(default_factory=list)
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
    now = time.time()
    if body.expires_in is not None:
        return now + body.expires_in
    return None if body.expires_at is None else parse_expires_at(body.expires_at, now)


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


@contextmanager
def key_errors() -> Iterator[None]:
    """KeyService's refusals as HTTP answers: an unknown key is a 404, a state conflict a 409."""
    try:
        yield
    except KeyNotFound as exc:
        raise ApiError(404, str(exc)) from exc
    except KeyConflict as exc:
        raise ApiError(409, str(exc)) from exc


# The operations below are shared by their routes and POST /keys/bulk (which marks its events `bulk=True`):
# each validates, changes and publishes its one event, or raises an ApiError having changed nothing.

def create_key(rt: Runtime, body: CreateKeyBody, who: str, **mark: Any) -> NewKey:
    body, auto_topup = _apply_template(rt, body)
    expires_at = _parse_expiry(body)
    new = rt.keys.create(
        body.name, body.credits, allowed_tools=body.allowed_tools, denied_tools=body.denied_tools,
        expires_at=expires_at, quota=body.quota.model_dump(by_alias=True) if body.quota else None,
        tags=body.tags, namespace=body.namespace, ip_allowlist=body.ip_allowlist,
        spending_limit=body.spending_limit, auto_topup=auto_topup,
    )
    rt.events.publish("key.created", who, keyMasked=new.record.masked, name=new.record.name,
                      credits=new.record.credits, namespace=new.record.namespace, template=body.template, **mark)
    return new


def topup_key(rt: Runtime, body: KeyCredits, who: str, **mark: Any) -> KeyRecord:
    with key_errors():
        record = rt.keys.topup(body.key, body.credits)
    rt.events.publish("key.topup", who, keyMasked=record.masked, creditsAdded=body.credits,
                      newBalance=record.credits, **mark)
    return record


def revoke_key(rt: Runtime, body: KeyRef, who: str, **mark: Any) -> KeyRecord:
    with key_errors():
        record = rt.keys.revoke(body.key)
    rt.events.publish("key.revoked", who, keyMasked=record.masked, **mark)
    return record


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["keys"])

    @r.post("/keys", status_code=201)
    async def create(body: CreateKeyBody, request: Request) -> JSONResponse:
        """Create an API key, optionally from a template. The full key is returned once, here, and never again."""
        new = create_key(rt, body, actor(request))
        return JSONResponse({"key": new.raw, **key_view(new.record), "template": body.template,
                             "message": "Key created"}, status_code=201)

    @r.post("/topup")
    async def topup(body: KeyCredits, request: Request) -> dict[str, Any]:
        """Add credits to a key."""
        record = topup_key(rt, body, actor(request))
        return {"message": f"Added {body.credits} credits", "keyMasked": record.masked,
                "creditsAdded": body.credits, "credits": record.credits, "newBalance": record.credits}

    @r.post("/keys/revoke")
    async def revoke(body: KeyRef, request: Request) -> dict[str, Any]:
        """Permanently revoke a key."""
        record = revoke_key(rt, body, actor(request))
        return {"message": "Key revoked", "keyMasked": record.masked, "revoked": True}

    return r
