"""Auto-topup configuration: POST /keys/auto-topup."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, model_validator

from paygate.api.common import AdminGuard, Body, KeyRefField, actor, find_key
from paygate.api.fields import MAX_DAILY_TOPUPS as MAX_DAILY
from paygate.core.values import MAX_CREDITS
from paygate.keys.auto_topup import AutoTopup, config_view
from paygate.keys.service import KeyService


class AutoTopupBody(Body):
    """Either {key, threshold, amount, maxDaily} to enable, or {key, disable: true}."""

    key: KeyRefField
    threshold: int | None = Field(default=None, ge=0, le=MAX_CREDITS)
    amount: int | None = Field(default=None, gt=0, le=MAX_CREDITS)
    max_daily: int = Field(default=0, ge=0, le=MAX_DAILY)  # 0: unlimited
    disable: bool = False

    @model_validator(mode="after")
    def _enable_or_disable(self) -> AutoTopupBody:
        if self.disable:
            if self.threshold is not None or self.amount is not None or "max_daily" in self.model_fields_set:
                raise ValueError("disable takes only the key")
        elif self.threshold is None or self.amount is None:
            raise ValueError("threshold and amount are required (or disable: true)")
        return self


def router(guard: AdminGuard, keys: KeyService, service: AutoTopup) -> APIRouter:
    r = guard.router("auto-topup")

    @r.post("/keys/auto-topup")
    async def configure(body: AutoTopupBody, request: Request) -> dict[str, Any]:
        """Enable, change or disable a key's auto-topup."""
        record = find_key(keys, body.key)
        if body.disable:
            service.disable(record, actor(request))
            return {"keyMasked": record.masked, "autoTopup": None, "message": "Auto-topup disabled"}
        assert body.threshold is not None and body.amount is not None  # the validator saw to it
        service.configure(record, body.threshold, body.amount, body.max_daily, actor(request))
        cap = f"max {body.max_daily}/day" if body.max_daily else "no daily limit"
        return {
            "keyMasked": record.masked,
            "autoTopup": config_view(record),
            "message": f"Auto-topup enabled: add {body.amount} credits when balance drops below "
            f"{body.threshold} ({cap})",
        }

    return r
