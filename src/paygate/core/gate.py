"""The gate's pure policy checks: an ordered list of small functions.

Each check looks at a `GateInput` and returns `None` (pass) or a `Denial`.
Stateful steps (rate windows, the atomic charge) run after these, in the
billing service. Shadow mode is applied once, by the caller, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from paygate.store.records import KeyRecord


@dataclass(frozen=True, slots=True)
class GateInput:
    key: KeyRecord | None
    key_given: bool
    tool: str
    price: int
    now: float


@dataclass(frozen=True, slots=True)
class Denial:
    reason: str
    detail: str = ""

    @property
    def text(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


Check = Callable[[GateInput], Denial | None]


def check_key_present(g: GateInput) -> Denial | None:
    return None if g.key_given else Denial("missing_api_key")


def check_key_known(g: GateInput) -> Denial | None:
    return None if g.key is not None else Denial("invalid_api_key")


def check_key_active(g: GateInput) -> Denial | None:
    assert g.key is not None
    return None if g.key.active else Denial("key_revoked")


def check_key_not_suspended(g: GateInput) -> Denial | None:
    assert g.key is not None
    return Denial("key_suspended") if g.key.suspended else None


def check_key_not_expired(g: GateInput) -> Denial | None:
    assert g.key is not None
    expires = g.key.expires_at
    return Denial("api_key_expired") if expires is not None and g.now >= expires else None


def check_tool_allowed(g: GateInput) -> Denial | None:
    assert g.key is not None
    if g.key.allowed_tools and g.tool not in g.key.allowed_tools:
        return Denial("tool_not_allowed", f"{g.tool} is not in this key's allowed tools")
    if g.tool in g.key.denied_tools:
        return Denial("tool_not_allowed", f"{g.tool} is denied for this key")
    return None


def check_spending_limit(g: GateInput) -> Denial | None:
    assert g.key is not None
    limit = g.key.spending_limit
    if limit and g.key.total_spent + g.price > limit:
        return Denial("spending_limit_exceeded", f"limit {limit}, spent {g.key.total_spent}, need {g.price}")
    return None


def check_credits(g: GateInput) -> Denial | None:
    assert g.key is not None
    if g.key.credits < g.price:
        return Denial("insufficient_credits", f"need {g.price}, have {g.key.credits}")
    return None


# Identity and access: run before the rate windows are touched.
ACCESS_CHECKS: tuple[Check, ...] = (
    check_key_present,
    check_key_known,
    check_key_active,
    check_key_not_suspended,
    check_key_not_expired,
    check_tool_allowed,
)
# Money: run after the rate windows admitted the call, just before the charge.
FUNDS_CHECKS: tuple[Check, ...] = (
    check_credits,
    check_spending_limit,
)


def evaluate(g: GateInput, checks: Sequence[Check]) -> Denial | None:
    """The first denial, in order, or None when every check passes."""
    for check in checks:
        denial = check(g)
        if denial is not None:
            return denial
    return None
