"""Admin-key management as an operation: create, revoke and list role-bearing admin keys, each change
announced on the bus (`admin_key.created` / `admin_key.revoked`, masked keys only). The keys themselves
are `AdminAuth`'s (admin/auth.py)."""

from __future__ import annotations

from typing import Any

from paygate.admin.auth import AdminAuth, AdminIdentity
from paygate.events.hub import EventHub


class AdminKeys:
    def __init__(self, auth: AdminAuth, events: EventHub) -> None:
        self.auth = auth
        self.events = events

    def list(self) -> list[dict[str, Any]]:
        return self.auth.list()

    def create(self, name: str, role: str, actor: str, tenant_id: str | None = None) -> tuple[str, dict[str, Any]]:
        """(the raw key, shown once; its document). `tenant_id`: a viewer scoped to that tenant."""
        raw, doc = self.auth.create(name, role, actor, tenant_id)
        scope = {"tenantId": tenant_id} if tenant_id is not None else {}
        self.events.publish(
            "admin_key.created", actor, keyMasked=doc["keyMasked"], name=doc["name"], role=doc["role"], **scope
        )
        return raw, doc

    def revoke(self, ref: str, by: AdminIdentity) -> dict[str, Any]:
        """Revoke the key `ref` names (raw or masked); never the bootstrap key, nor the caller's own."""
        doc = self.auth.revoke(ref, by)
        self.events.publish(
            "admin_key.revoked", by.actor, keyMasked=doc["keyMasked"], name=doc["name"], role=doc["role"]
        )
        return doc

    def rotate_bootstrap(self, by: AdminIdentity) -> str:
        """A new bootstrap key (returned once); the old one gets 401 from now on. Announced without either key."""
        raw = self.auth.rotate_bootstrap()
        self.events.publish("admin_key.bootstrap_rotated", by.actor, keyMasked="bootstrap")
        return raw
