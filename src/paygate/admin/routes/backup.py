"""GET /admin/backup and POST /admin/restore.

Both routes are `async def` on purpose: they run on the event loop, so no charge
interleaves with a snapshot being taken or with a restore bringing balances to
the backup's values. Restore needs super_admin: it can rewrite admin keys.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from paygate.admin.auth import ADMIN_KEY_DOC
from paygate.admin.backup import BackupError, BackupService, Mode
from paygate.api.common import ApiError, Body, actor, admin_of, require_admin, role
from paygate.runtime import Runtime


class RestoreBody(Body):
    backup: dict[str, Any]
    mode: Mode = "merge"


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["backup"])
    service = BackupService(rt.store)

    @r.get("/admin/backup", openapi_extra=role("admin"))
    async def export_backup(request: Request) -> JSONResponse:
        """The whole gateway state as versioned JSON with a SHA-256 checksum (no raw keys)."""
        backup = service.export()
        data = backup["data"]
        rt.events.publish("backup.exported", actor(request), keys=len(data["keys"]),
                          documents=sum(len(d) for d in data["documents"].values()))
        return JSONResponse(backup)

    @r.post("/admin/restore", openapi_extra=role("super_admin"))
    async def restore_backup(body: RestoreBody, request: Request) -> dict[str, Any]:
        """Restore a backup in merge, overwrite or full mode; a bad backup changes nothing."""
        identity = admin_of(request)
        keep = set() if identity.bootstrap else {(ADMIN_KEY_DOC, identity.key_hash)}
        try:
            plan = service.parse(body.backup, body.mode)
            counts = service.apply(plan, keep)
        except BackupError as exc:
            raise ApiError(exc.status, str(exc)) from exc
        rt.events.publish("backup.restored", actor(request), mode=body.mode, counts=counts)
        return {"message": f"Backup restored ({body.mode})", "mode": body.mode, "restored": counts}

    return r
