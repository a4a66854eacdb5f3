"""Alert rules and pending alerts: POST /alerts, GET /alerts, GET /alerts/rules.

The rules are evaluated by `AlertService` (alerts/service.py), a deferred subscriber of the event
bus built here, so nothing runs on the tool call's path.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from paygate.alerts.service import (
    DEFAULT_COOLDOWN,
    MAX_COOLDOWN,
    MAX_RULES,
    MAX_THRESHOLD,
    AlertService,
    Rule,
    RuleError,
    rules_from_config,
)
from paygate.api.common import ApiError, Body, actor, require_admin, role
from paygate.config import Settings
from paygate.config_events import AlertType
from paygate.core.records import KeyRecord
from paygate.runtime import Runtime

SWEEP_EVERY = 60.0


class RuleBody(Body):
    type: AlertType
    threshold: Annotated[int | float, Field(ge=0, le=MAX_THRESHOLD, allow_inf_nan=False)]
    cooldown_seconds: int = Field(default=DEFAULT_COOLDOWN, ge=0, le=MAX_COOLDOWN)


class AlertsBody(Body):
    rules: list[RuleBody] = Field(max_length=MAX_RULES)


def config_rules(settings: Settings) -> list[Rule]:
    """`alertRules` from the config file, checked like the API's (a bad one stops the start)."""
    try:
        return rules_from_config(settings.alert_rules)
    except RuleError as exc:
        raise ValueError(f"alertRules: {exc}") from exc


def router(rt: Runtime) -> APIRouter:
    def daily_calls(key: KeyRecord, now: float) -> tuple[int, int]:
        quota = rt.billing.policy_for(key).quota  # the effective quota: key, group, plan or global
        limit = int(quota.get("dailyCallLimit") or 0) if quota else 0
        return (rt.billing.quotas.snapshot(key.key_hash, now).day_calls if limit else 0), limit

    service = AlertService(rt.store, rt.events, config_rules(rt.settings), daily_calls=daily_calls)
    rt.events.subscribe(service.on_event, ("backup.restored",))
    rt.events.subscribe_batch(service.on_batch)
    last_sweep = [0.0]

    def sweep(now: float) -> None:
        if now - last_sweep[0] >= SWEEP_EVERY:
            last_sweep[0] = now
            service.sweep(now)

    rt.tickers.append(sweep)
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["alerts"])

    def rules_view() -> dict[str, Any]:
        return {"rules": [rule.json() for rule in service.rules], "count": len(service.rules),
                "source": service.source}

    @r.post("/alerts")
    async def configure(body: AlertsBody, request: Request) -> dict[str, Any]:
        """Replace the alert rules. They are stored, and apply from the next tool call on."""
        rules = [Rule(b.type, b.threshold, b.cooldown_seconds) for b in body.rules]
        try:
            service.configure(rules)
        except RuleError as exc:
            raise ApiError(400, f"Invalid request: {exc}") from exc
        rt.events.publish("admin.alerts_configured", actor(request), ruleCount=len(rules),
                          types=sorted({rule.type for rule in rules}))
        return {**rules_view(), "message": f"{len(rules)} alert rule(s) configured"}

    # Admin, not viewer, although it is a GET: reading consumes the queue, so a read-only dashboard
    # polling it would silently take the alerts away from whoever acts on them.
    @r.get("/alerts", openapi_extra=role("admin"))
    async def consume() -> dict[str, Any]:
        """Pending alerts, oldest first; the queue is cleared. `dropped` counts alerts lost to the
        queue limit since the last read."""
        rt.events.flush()  # alerts from calls answered just now are evaluated before we read
        alerts, dropped = service.drain()
        return {"alerts": [a.json() for a in alerts], "count": len(alerts), "dropped": dropped}

    @r.get("/alerts/rules")
    async def current_rules() -> dict[str, Any]:
        """The rules in force (read-only) and where they came from: api, config or none."""
        return rules_view()

    return r

