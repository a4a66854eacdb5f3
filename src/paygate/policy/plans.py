"""Usage plans: named bundles of rate limit, quota, credit multiplier and tool ACL.

A plan is a document (kind `plan`, id = its name) in the fixed shape the gate reads
(core/policy.py resolves a key's effective policy from it); a key names its plan in
`KeyRecord.plan`. A plan that keys still use cannot be deleted (409): silently
unassigning would change those keys' limits behind the operator's back.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import Any

from paygate.core.domain_errors import Conflict, DomainError, Invalid, NotFound
from paygate.core.policy import QUOTA_FIELDS
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.keys.service import KeyService

PLAN_DOC = "plan"
MAX_PLANS = 100
MAX_MULTIPLIER = Decimal(100)
MULTIPLIER_DECIMALS = 4


class PlanError(DomainError):
    pass


class PlanInvalid(PlanError, Invalid):
    pass


class PlanNotFound(PlanError, NotFound):
    pass


class PlanConflict(PlanError, Conflict):
    pass


def parse_multiplier(value: int | float | str) -> int | float:
    """A credit multiplier as stored: a number > 0 and <= 100 with at most 4 decimals.

    The gate turns it into an exact fraction via its decimal text, so a stored 0.1 means 1/10.
    """
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise PlanInvalid("Invalid request: creditMultiplier must be a number") from exc
    if not amount.is_finite() or amount <= 0 or amount > MAX_MULTIPLIER:
        raise PlanInvalid("Invalid request: creditMultiplier must be > 0 and <= 100")
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MULTIPLIER_DECIMALS:
        raise PlanInvalid(f"Invalid request: creditMultiplier has more than {MULTIPLIER_DECIMALS} decimals")
    normal = amount.normalize()
    return int(normal) if normal == normal.to_integral_value() else float(normal)


def new_plan(name: str, now: float | None = None) -> dict[str, Any]:
    stamp = iso_time(now or time.time())
    return {
        "name": name,
        "description": "",
        "rateLimitPerMin": 0,
        "quota": {f: 0 for f in QUOTA_FIELDS},
        "creditMultiplier": 1,
        "allowedTools": [],
        "deniedTools": [],
        "createdAt": stamp,
        "updatedAt": stamp,
    }


class PlanService:
    """Plan documents and key assignments; each change announced after it is done."""

    def __init__(self, keys: KeyService) -> None:
        self.keys = keys
        self.store = keys.store

    def get(self, name: str) -> dict[str, Any]:
        plan = self.store.doc_get(PLAN_DOC, name)
        if plan is None:
            raise PlanNotFound(f"plan {name!r} not found")
        return plan

    def list(self) -> list[dict[str, Any]]:
        counts = self.key_counts()
        plans = sorted(self.store.doc_list(PLAN_DOC), key=lambda p: str(p["name"]))
        return [{**p, "keyCount": counts.get(p["name"], 0)} for p in plans]

    def key_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.store.list_keys():
            if record.plan is not None and record.active:
                counts[record.plan] = counts.get(record.plan, 0) + 1
        return counts

    def upsert(self, name: str, changes: dict[str, Any], actor: str) -> tuple[dict[str, Any], bool]:
        """Create the plan, or change the given fields of an existing one. Returns (plan with its
        keyCount, created)."""
        current = self.store.doc_get(PLAN_DOC, name)
        created = current is None
        if created and len(self.store.doc_items(PLAN_DOC)) >= MAX_PLANS:
            raise PlanConflict(f"at most {MAX_PLANS} plans")
        now = time.time()  # one reading: a new plan's updatedAt is its createdAt
        plan = current if current is not None else new_plan(name, now)
        if "creditMultiplier" in changes:
            changes = {**changes, "creditMultiplier": parse_multiplier(changes["creditMultiplier"])}
        if "quota" in changes:
            changes = {**changes, "quota": {f: int((changes["quota"] or {}).get(f) or 0) for f in QUOTA_FIELDS}}
        fields = sorted(changes)
        plan.update(changes)
        plan["updatedAt"] = iso_time(now)
        self.store.doc_put(PLAN_DOC, name, plan)
        self.keys.publish("plan.created" if created else "plan.updated", actor, plan=name, fields=fields)
        return {**plan, "keyCount": self.key_counts().get(name, 0)}, created

    def delete(self, name: str, actor: str) -> dict[str, Any]:
        plan = self.get(name)
        users = self.key_counts().get(name, 0)
        if users:
            raise PlanConflict(
                f"plan {name!r} is assigned to {users} key(s): move them to another plan (POST /admin/keys/plan) first"
            )
        self.store.doc_delete(PLAN_DOC, name)
        self.keys.publish("plan.deleted", actor, plan=name)
        return plan

    def assign(self, record: KeyRecord, name: str | None, actor: str) -> str | None:
        """Put a key on a plan (or on none); returns the previous plan."""
        if name is not None:
            self.get(name)
        if not record.active:
            raise PlanConflict("cannot change the plan of a revoked key")
        previous = record.plan
        self.keys.update_policy(record, actor, "key.plan_assigned", {"plan": name}, plan=name, previousPlan=previous)
        return previous


def plan_doc_problem(doc_id: str, doc: dict[str, Any]) -> str | None:
    """Why a plan document (e.g. from a backup) is not in the shape the gate reads, or None."""
    if doc.get("name") != doc_id:
        return "name must equal the document id"
    try:
        parse_multiplier(doc.get("creditMultiplier", 1))
    except PlanError as exc:
        return str(exc).removeprefix("Invalid request: ")
    rate = doc.get("rateLimitPerMin", 0)
    if type(rate) is not int or rate < 0:
        return "rateLimitPerMin must be an integer >= 0"
    quota = doc.get("quota")
    if quota is not None and (
        not isinstance(quota, dict)
        or set(quota) - set(QUOTA_FIELDS)
        or any(type(v) is not int or v < 0 for v in quota.values())
    ):
        return f"quota may only hold {', '.join(QUOTA_FIELDS)} as integers >= 0"
    for field in ("allowedTools", "deniedTools"):
        tools = doc.get(field, [])
        if not isinstance(tools, list) or not all(isinstance(t, str) and t for t in tools):
            return f"{field} must be a list of tool names"
    return None
