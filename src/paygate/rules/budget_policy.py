"""One budget policy as an admin states it (rules/budgets.py): its fields checked, its target resolved.

A target is `*` (every call together), `namespace:<name>` (that namespace's keys together) or
`key:<the key or its alias>` (one key; stored by its hash, shown masked, never kept in the clear)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from paygate.core.budgets import ACTIONS
from paygate.core.domain_errors import Invalid
from paygate.rules.budget_counts import BudgetCounts

MAX_POLICIES = 100
MAX_BUDGET = 1_000_000_000
MAX_WINDOW_MINUTES = 60  # a window of per-second sums: at most 3600 entries a policy
FIELDS = ("name", "target", "dailyBudget", "monthlyBudget", "burnRateLimit", "windowMinutes", "action")
NAMESPACE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
DEFAULTS: dict[str, Any] = {
    "dailyBudget": 0,
    "monthlyBudget": 0,
    "burnRateLimit": 0,
    "windowMinutes": 5,
    "action": "deny",
}


@dataclass(slots=True)
class Policy:
    id: str
    name: str
    target: str  # "*", "namespace:<ns>" or "key:<masked>"
    key_hash: str | None
    daily_budget: int
    monthly_budget: int
    burn_limit: int
    window_minutes: int
    action: str
    created_at: str
    counts: BudgetCounts = field(init=False)
    refused: int = 0
    alerts: int = 0
    alerted_day: float = -1.0  # the day / month an alert was sent for (once per period)
    alerted_month: float = -1.0
    burn_breached: bool = False  # the burn rate is over its limit: alerted once, re-armed when it falls back

    def __post_init__(self) -> None:
        self.counts = BudgetCounts(self.window_minutes * 60)

    @property
    def namespace(self) -> str | None:
        return self.target[len("namespace:") :] if self.target.startswith("namespace:") else None

    def doc(self) -> dict[str, Any]:
        """As stored (the key's hash, never the key)."""
        return {
            "id": self.id,
            "name": self.name,
            "target": self.target,
            "keyHash": self.key_hash,
            "dailyBudget": self.daily_budget,
            "monthlyBudget": self.monthly_budget,
            "burnRateLimit": self.burn_limit,
            "windowMinutes": self.window_minutes,
            "action": self.action,
            "createdAt": self.created_at,
        }


def from_doc(doc: dict[str, Any]) -> Policy:
    return Policy(
        id=str(doc["id"]),
        name=str(doc["name"]),
        target=str(doc["target"]),
        key_hash=doc.get("keyHash"),
        daily_budget=int(doc["dailyBudget"]),
        monthly_budget=int(doc["monthlyBudget"]),
        burn_limit=int(doc["burnRateLimit"]),
        window_minutes=int(doc["windowMinutes"]),
        action=str(doc["action"]),
        created_at=str(doc.get("createdAt") or ""),
    )


def checked(body: Any, base: dict[str, Any] | None) -> dict[str, Any]:
    """The fields of a new policy (`base` None) or of changes to one, each checked; the result whole (with
    the defaults or `base`'s values) must limit something. Unknown fields are refused."""
    if not isinstance(body, dict):
        raise Invalid("a budget policy must be an object")
    unknown = sorted(set(body) - {*FIELDS, "id"})
    if unknown:
        raise Invalid(f"Unknown field(s): {', '.join(unknown)} (allowed: id, {', '.join(FIELDS)})")
    doc = dict(base) if base is not None else dict(DEFAULTS)
    for name in FIELDS:
        if name not in body:
            continue
        value = body[name]
        if name == "name":
            if not isinstance(value, str) or not 1 <= len(value.strip()) <= 100:
                raise Invalid("name must be a string of 1 to 100 characters")
            value = value.strip()
        elif name == "target":
            if not isinstance(value, str) or not value:
                raise Invalid('target must be "*", "namespace:<name>" or "key:<the key or its alias>"')
        elif name == "action":
            if value not in ACTIONS:
                raise Invalid(f"action must be one of {', '.join(ACTIONS)}")
        elif name == "windowMinutes":
            if type(value) is not int or not 1 <= value <= MAX_WINDOW_MINUTES:
                raise Invalid(f"windowMinutes must be an integer from 1 to {MAX_WINDOW_MINUTES}")
        elif type(value) is not int or not 0 <= value <= MAX_BUDGET:
            raise Invalid(f"{name} must be an integer from 0 to {MAX_BUDGET} (0: none)")
        doc[name] = value
    if base is None:
        for required in ("name", "target"):
            if required not in doc:
                raise Invalid(f"{required} is required")
    if not (doc["dailyBudget"] or doc["monthlyBudget"] or doc["burnRateLimit"]):
        raise Invalid("a policy must set at least one of dailyBudget, monthlyBudget, burnRateLimit")
    return doc


def parse_target(target: str) -> tuple[str, str | None]:
    """("*" | "namespace" | "key", the namespace or key reference)."""
    if target == "*":
        return "*", None
    kind, _, rest = target.partition(":")
    if kind == "namespace" and NAMESPACE.match(rest):
        return "namespace", rest
    if kind == "key" and 1 <= len(rest) <= 200:
        return "key", rest
    raise Invalid('target must be "*", "namespace:<name>" or "key:<the key or its alias>"')
