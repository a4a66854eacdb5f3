"""GET /admin/backup and POST /admin/restore.

Both routes are `async def` on purpose: they run on the event loop, so no charge
interleaves with a snapshot being taken or with a restore bringing balances to
the backup's values. Restore needs super_admin: it can rewrite admin keys.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from paygate.admin.auth import ADMIN_KEY_DOC
from paygate.admin.backup import BackupService, Mode
from paygate.api.common import AdminGuard, Body, actor, admin_of, role


class RestoreBody(Body):
    backup: dict[str, Any]
    mode: Mode = "merge"


def router(guard: AdminGuard, service: BackupService) -> APIRouter:
    r = guard.router("backup")

    @r.get("/admin/backup", openapi_extra=role("admin"))
    async def export_backup(request: Request) -> JSONResponse:
        """The whole gateway state as versioned JSON with a SHA-256 checksum (no raw keys)."""
        return JSONResponse(service.export(actor(request)))

    @r.post("/admin/restore", openapi_extra=role("super_admin"))
    async def restore_backup(body: RestoreBody, request: Request) -> dict[str, Any]:
        """Restore a backup in merge, overwrite or full mode; a bad backup changes nothing."""
        identity = admin_of(request)
        keep = set() if identity.bootstrap else {(ADMIN_KEY_DOC, identity.key_hash)}
        counts = service.restore(body.backup, body.mode, keep, actor(request))
        return {"message": f"Backup restored ({body.mode})", "mode": body.mode, "restored": counts}

    return r
