"""Admin keys with roles: GET/POST /admin/keys, POST /admin/keys/revoke, POST /admin/keys/rotate-bootstrap
(all super_admin only), and GET /admin/whoami (any admin key: its own identity).

The raw `ak_…` key is in the creation answer and nowhere else; listings and
events carry the masked form. The bootstrap key is not a document, so it can
never be revoked, and a super_admin therefore always remains.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from paygate.admin.admin_keys import AdminKeys
from paygate.admin.auth import admin_key_view
from paygate.api.common import AdminGuard, Body, actor, admin_of, role

SUPER = role("super_admin")


class CreateAdminKey(Body):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["super_admin", "admin", "viewer"] = "admin"
    # Scope the key to one tenant (docs/tenants.md): then a viewer that reads only that tenant's view.
    tenant_id: str | None = Field(default=None, min_length=1, max_length=64)


class AdminKeyRef(Body):
    key: str = Field(min_length=1, max_length=200, description="the admin key, or its masked form")


def router(guard: AdminGuard, admin_keys: AdminKeys) -> APIRouter:
    r = guard.router("admin-keys")

    @r.get("/admin/whoami", openapi_extra=role("viewer"))
    async def whoami(request: Request) -> dict[str, Any]:
        """The calling admin key: its name, role, masked form, and what its role may do (the dashboard
        shows change buttons only to keys that may change things)."""
        identity = admin_of(request)
        return {
            "name": identity.name,
            "role": identity.role,
            "keyMasked": identity.masked,
            "bootstrap": identity.bootstrap,
            "canChange": identity.can("admin") and identity.tenant_id is None,
            "canManageAdminKeys": identity.can("super_admin") and identity.tenant_id is None,
            "tenantId": identity.tenant_id,
        }

    @r.get("/admin/keys", openapi_extra=SUPER)
    async def list_admin_keys() -> dict[str, Any]:
        """Every admin key, masked, with its role, status and last use."""
        keys = admin_keys.list()
        return {"keys": keys, "count": len(keys)}

    @r.post("/admin/keys", status_code=201, openapi_extra=SUPER)
    async def create_admin_key(body: CreateAdminKey, request: Request) -> JSONResponse:
        """Create an admin key with a role. The raw key is returned once, here."""
        raw, doc = admin_keys.create(body.name, body.role, actor(request), body.tenant_id)
        return JSONResponse(
            {"key": raw, **admin_key_view(doc), "message": "Admin key created. Store it now: it is not shown again."},
            status_code=201,
        )

    @r.post("/admin/keys/revoke", openapi_extra=SUPER)
    async def revoke_admin_key(body: AdminKeyRef, request: Request) -> dict[str, Any]:
        """Revoke an admin key (not your own, never the bootstrap key); it gets 401 from then on."""
        doc = admin_keys.revoke(body.key, admin_of(request))
        return {"message": "Admin key revoked", "revoked": True, **admin_key_view(doc)}

    @r.post("/admin/keys/rotate-bootstrap", openapi_extra=SUPER)
    async def rotate_bootstrap_key(request: Request) -> dict[str, Any]:
        """Replace the bootstrap admin key: the new key is in this answer only, the old one is refused at
        once and stays refused after a restart, even if it is given again by flag or env."""
        raw = admin_keys.rotate_bootstrap(admin_of(request))
        return {
            "rotated": True,
            "newKey": raw,
            "message": "Bootstrap admin key rotated. The old key is now revoked. Store the new key securely.",
        }

    return r
