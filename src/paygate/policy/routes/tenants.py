"""Tenants: GET/POST/DELETE /admin/tenants (policy/tenants.py, docs/tenants.md).

One POST, its `action` saying what to do (create when absent): create, update, suspend, activate, bind,
unbind. Each action takes only its own fields; anything else is a 400 that changes nothing.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, admin_of, find_key
from paygate.api.fields import Tags
from paygate.core.domain_errors import NotFound
from paygate.keys.service import KeyService
from paygate.policy.routes.memberships import Description, DocId, DocName, stored_doc_problem
from paygate.policy.routes.teams import TeamQuota
from paygate.policy.tenants import STATUSES, Tenants

Action = Literal["create", "update", "suspend", "activate", "bind", "unbind"]
RateLimit = Annotated[int, Field(ge=0, le=1_000_000)]
# The fields each action accepts besides `action` (create also requires `name`; every other but unbind `id`).
FIELDS = ("name", "description", "rate_limit_per_min", "quota", "tags")
ALLOWED: dict[str, set[str]] = {
    "create": set(FIELDS),
    "update": {"id", *FIELDS},
    "suspend": {"id", "reason"},
    "activate": {"id"},
    "bind": {"id", "key", "api_key"},
    "unbind": {"id", "key", "api_key"},
}


class TenantFields(Body):
    """A tenant document's settable fields (the stored names; a backup's documents are checked by it)."""

    description: Description = ""
    rate_limit_per_min: RateLimit = 0  # all the tenant's keys together; 0 = none
    quota: TeamQuota | None = None  # daily/monthly calls and credits for all its keys; null = none
    tags: Tags = Field(default_factory=dict)
    status: Literal["active", "suspended"] = "active"


class TenantAction(Body):
    action: Action = "create"
    id: DocId | None = None
    name: DocName | None = None
    description: Description | None = None
    rate_limit_per_min: RateLimit | None = None
    quota: TeamQuota | None = None
    tags: Tags | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None
    key: KeyRefField | None = None
    api_key: KeyRefField | None = None

    @model_validator(mode="after")
    def _fits_action(self) -> TenantAction:
        sent = self.model_fields_set - {"action"}
        stray = sorted(sent - ALLOWED[self.action])
        if stray:
            names = ", ".join(type(self).model_fields[f].alias or f for f in stray)
            raise ValueError(f"{names} does not apply to action {self.action}")
        if self.action != "create" and self.action != "unbind" and self.id is None:
            raise ValueError(f"action {self.action} needs the tenant's id")
        if self.action == "create" and self.name is None:
            raise ValueError("action create needs a name")
        if self.action == "update" and not sent - {"id"}:
            raise ValueError("nothing to update")
        if self.action in ("bind", "unbind") and (self.key is None) == (self.api_key is None):
            raise ValueError("give the key as key (or apiKey)")
        for name in ("name", "description", "rate_limit_per_min", "tags"):
            if name in sent and getattr(self, name) is None:
                raise ValueError(f"{type(self).model_fields[name].alias or name} cannot be null")
        return self

    def fields(self) -> dict[str, Any]:
        """The document fields sent (create, update), as the tenant document stores them."""
        out = self.model_dump(by_alias=True, include=self.model_fields_set & set(FIELDS))
        if "quota" in out and out["quota"] is None:
            out["quota"] = TeamQuota().model_dump(by_alias=True)
        return out


def tenant_doc_problem(doc_id: str, doc: dict[str, Any]) -> str | None:
    """Why a tenant document (from a backup) is not one /admin/tenants could have written, or None."""
    if doc.get("status") not in STATUSES:
        return "status: must be active or suspended"
    return stored_doc_problem(TenantFields, doc_id, doc)


def router(guard: AdminGuard, keys: KeyService, tenants: Tenants) -> APIRouter:
    # async routes: on the event loop, so the checks (names, caps) and the writes they guard never interleave.
    r = guard.router("tenants")

    @r.get("/admin/tenants")
    async def get_tenants(
        request: Request,
        tenant_id: Annotated[str | None, Query(alias="id", min_length=1, max_length=64)] = None,
    ) -> dict[str, Any]:
        """Every tenant with key count and usage, and totals across tenants; with `?id=` one tenant with its
        keys (masked) and usage today and this month. An admin key scoped to a tenant sees only its own."""
        scope = admin_of(request).tenant_id
        if scope is not None and tenant_id is not None and tenant_id != scope:
            raise NotFound("Tenant not found")  # as if it did not exist: a tenant learns nothing of others
        if tenant_id is not None:
            return tenants.detail(tenant_id, time.time())
        return tenants.report(time.time(), only=scope)

    @r.post("/admin/tenants")
    async def post_tenants(body: TenantAction, request: Request) -> JSONResponse:
        """create (201) | update | suspend | activate | bind | unbind, by `action` (create when absent)."""
        who = actor(request)
        action = body.action
        if action == "create":
            return JSONResponse(tenants.create(body.fields(), who), status_code=201)
        tenant_id = body.id
        if action == "update":
            assert tenant_id is not None
            return JSONResponse(tenants.update(tenant_id, body.fields(), who))
        if action in ("suspend", "activate"):
            assert tenant_id is not None
            status = "suspended" if action == "suspend" else "active"
            return JSONResponse(tenants.set_status(tenant_id, status, who, body.reason))
        record = find_key(keys, str(body.key or body.api_key))
        if action == "bind":
            assert tenant_id is not None
            tenants.bind(tenant_id, record, who)
            return JSONResponse({"message": "Key bound to tenant", "id": tenant_id, "keyMasked": record.masked})
        left = tenants.unbind(record, who, tenant_id)
        return JSONResponse({"message": "Key unbound from tenant", "id": left, "keyMasked": record.masked})

    @r.delete("/admin/tenants")
    async def delete_tenant(
        request: Request, tenant_id: Annotated[str, Query(alias="id", min_length=1, max_length=64)]
    ) -> dict[str, Any]:
        """Erase a tenant; its keys are unbound first (they keep working, without its limits)."""
        doc, released = tenants.delete(tenant_id, actor(request))
        return {"message": "Tenant deleted", "id": doc["id"], "deleted": True, "keysReleased": released}

    return r
