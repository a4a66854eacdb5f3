"""Dry runs: /requests/dry-run and /requests/dry-run/batch evaluate the gate without charging."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from paygate.api.common import require_admin
from paygate.services.runtime import Runtime


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["dry-run"])
    return r
