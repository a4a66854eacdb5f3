"""Alert rules and pending alerts: POST /alerts, GET /alerts, GET /alerts/rules.

The rules are evaluated by `AlertService` (alerts/service.py), a deferred subscriber of the event
bus wired by the composition root (compose/events.py), so nothing runs on the tool call's path.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field

from paygate.alerts.rules import DEFAULT_COOLDOWN, MAX_COOLDOWN, MAX_RULES, MAX_THRESHOLD, Rule
from paygate.alerts.service import AlertService
from paygate.api.common import AdminGuard, Body, actor, role
from paygate.config_events import AlertType


class RuleBody(Body):
    type: AlertType
    threshold: Annotated[int | float, Field(ge=0, le=MAX_THRESHOLD, allow_inf_nan=False)]
    cooldown_seconds: int = Field(default=DEFAULT_COOLDOWN, ge=0, le=MAX_COOLDOWN)


class AlertsBody(Body):
    rules: list[RuleBody] = Field(max_length=MAX_RULES)


def router(guard: AdminGuard, service: AlertService) -> APIRouter:
    r = guard.router("alerts")

    def rules_view() -> dict[str, Any]:
        return {"rules": [rule.json() for rule in service.rules], "count": len(service.rules), "source": service.source}

    @r.post("/alerts")
    async def configure(body: AlertsBody, request: Request) -> dict[str, Any]:
        """Replace the alert rules. They are stored, and apply from the next tool call on."""
        rules = service.set_rules([Rule(b.type, b.threshold, b.cooldown_seconds) for b in body.rules], actor(request))
        return {**rules_view(), "message": f"{len(rules)} alert rule(s) configured"}

    # Admin, not viewer, although it is a GET: reading consumes the queue, so a read-only dashboard
    # polling it would silently take the alerts away from whoever acts on them.
    @r.get("/alerts", openapi_extra=role("admin"))
    async def consume() -> dict[str, Any]:
        """Pending alerts, oldest first; the queue is cleared. `dropped` counts alerts lost to the
        queue limit since the last read."""
        alerts, dropped = service.take_pending()
        return {"alerts": [a.json() for a in alerts], "count": len(alerts), "dropped": dropped}

    @r.get("/alerts/rules")
    async def current_rules() -> dict[str, Any]:
        """The rules in force (read-only) and where they came from: api, config or none."""
        return rules_view()

    return r
