"""Bulk key operations: POST /keys/bulk.

Each operation is validated and run on its own: a bad one gets an error result
and the rest still run (as the reference does). Only a malformed envelope
(not a list of 1-100 objects) is a 400 that runs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError

from paygate.api.common import AdminGuard, Body, KeyRef, KeyRefField, actor, find_key, status_of
from paygate.core.domain_errors import DomainError
from paygate.keys.routes.schemas import CreateKeyBody, KeyCredits, create_key
from paygate.keys.service import KeyService
from paygate.keys.templates import TemplateService

MAX_OPERATIONS = 100
Action = Literal["create", "topup", "revoke", "suspend", "resume"]

log = logging.getLogger("paygate.bulk")


class BulkBody(Body):
    operations: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_OPERATIONS)


class SuspendOp(Body):
    key: KeyRefField
    reason: str | None = Field(default=None, max_length=500)


Result = dict[str, Any]


def _invalid(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"Invalid request: {where + ': ' if where else ''}{first['msg']}"


def router(guard: AdminGuard, keys: KeyService, templates: TemplateService) -> APIRouter:
    r = guard.router("bulk")

    # One service call per operation, each announcing itself marked bulk=True.
    def create(body: CreateKeyBody, who: str) -> Result:
        new = create_key(keys, templates, body, who, bulk=True)
        return {"key": new.raw, "keyMasked": new.record.masked, "name": new.record.name, "credits": new.record.credits}

    def topup(body: KeyCredits, who: str) -> Result:
        record = keys.topup(body.key, body.credits, who, bulk=True)
        return {"keyMasked": record.masked, "creditsAdded": body.credits, "newBalance": record.credits}

    def revoke(body: KeyRef, who: str) -> Result:
        record = keys.revoke(body.key, who, bulk=True)
        return {"keyMasked": record.masked, "message": "Key revoked"}

    def suspend(body: SuspendOp, who: str) -> Result:
        record = find_key(keys, body.key)
        keys.suspend(record, body.reason, who, bulk=True)
        return {"keyMasked": record.masked, "suspended": True, "message": "Key suspended"}

    def resume(body: KeyRef, who: str) -> Result:
        record = find_key(keys, body.key)
        keys.resume(record, who, bulk=True)
        return {"keyMasked": record.masked, "suspended": False, "message": "Key resumed"}

    # action -> (its body model, its handler): one operation = one validated model, one call.
    actions: dict[str, tuple[type[BaseModel], Callable[[Any, str], Result]]] = {
        "create": (CreateKeyBody, create),
        "topup": (KeyCredits, topup),
        "revoke": (KeyRef, revoke),
        "suspend": (SuspendOp, suspend),
        "resume": (KeyRef, resume),
    }

    def run(index: int, op: dict[str, Any], who: str) -> Result:
        action = op.get("action")
        out: Result = {"index": index, "action": action if isinstance(action, str) else None}
        if not isinstance(action, str) or action not in actions:
            return {**out, "success": False, "error": f"Unknown action {action!r}: use one of {', '.join(actions)}"}
        model, handler = actions[action]
        try:
            body = model.model_validate({k: v for k, v in op.items() if k != "action"})
            return {**out, "success": True, "result": handler(body, who)}
        except ValidationError as exc:
            return {**out, "success": False, "error": _invalid(exc)}
        except DomainError as exc:  # this operation's refusal is its result, not the request's answer
            return {**out, "success": False, "error": exc.message, "status": status_of(exc)}
        except Exception:  # e.g. the disk refused a write: report it here, keep the batch's other results
            log.exception("bulk operation %d (%s) failed", index, action)
            return {**out, "success": False, "error": "Internal error: the operation was not applied", "status": 500}

    @r.post("/keys/bulk")
    async def bulk(body: BulkBody, request: Request) -> dict[str, Any]:
        """Run up to 100 create/topup/revoke/suspend/resume operations; one result per operation."""
        who = actor(request)
        results = [run(i, op, who) for i, op in enumerate(body.operations)]
        succeeded = sum(1 for res in results if res["success"])
        keys.announce_bulk(who, len(results), succeeded)
        return {"total": len(results), "succeeded": succeeded, "failed": len(results) - succeeded, "results": results}

    return r
