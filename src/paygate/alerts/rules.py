"""Alert rules and their checks: what a rule is, the limits a rule set must meet, and one small pure
check per rule type, `(KeyFacts, threshold) -> Finding | None`, so the arithmetic is tested apart from
everything else. `AlertService` (alerts/service.py) runs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from paygate.config_events import ALERT_TYPES, AlertRuleConfig
from paygate.core.domain_errors import Invalid
from paygate.core.values import iso_time

DEFAULT_COOLDOWN = 300
MAX_COOLDOWN = 86_400 * 30
MAX_RULES = 50
MAX_THRESHOLD = 10**12  # far past any credit balance or expiry horizon; keeps numbers finite
PERCENT_TYPES = frozenset({"spending_threshold", "quota_warning"})

Number = int | float


class RuleError(Invalid, ValueError):
    """A rule set that cannot be stored; the message names what is wrong (a config file's bad rules
    stop the start; the API's are a 400 that changes nothing)."""


@dataclass(frozen=True, slots=True)
class Rule:
    type: str
    threshold: Number
    cooldown_seconds: int = DEFAULT_COOLDOWN

    def json(self) -> dict[str, Any]:
        return {"type": self.type, "threshold": self.threshold, "cooldownSeconds": self.cooldown_seconds}


def check_rules(rules: Sequence[Rule]) -> None:
    """Limits no field type says: the rule count, percentages, finite thresholds, no duplicates."""
    if len(rules) > MAX_RULES:
        raise RuleError(f"at most {MAX_RULES} rules")
    seen: set[tuple[str, Number]] = set()
    for i, rule in enumerate(rules):
        where = f"rules.{i}"
        if rule.type not in ALERT_TYPES:
            raise RuleError(f"{where}.type: must be one of {', '.join(ALERT_TYPES)}")
        if isinstance(rule.threshold, bool) or not isinstance(rule.threshold, int | float):
            raise RuleError(f"{where}.threshold: must be a number")
        if not math.isfinite(rule.threshold) or rule.threshold < 0 or rule.threshold > MAX_THRESHOLD:
            raise RuleError(f"{where}.threshold: must be between 0 and {MAX_THRESHOLD}")
        if rule.type in PERCENT_TYPES and rule.threshold > 100:
            raise RuleError(f"{where}.threshold: {rule.type} is a percentage (0-100)")
        if (
            isinstance(rule.cooldown_seconds, bool)
            or not isinstance(rule.cooldown_seconds, int)
            or not 0 <= rule.cooldown_seconds <= MAX_COOLDOWN
        ):
            raise RuleError(f"{where}.cooldownSeconds: must be an integer between 0 and {MAX_COOLDOWN}")
        if (rule.type, rule.threshold) in seen:
            raise RuleError(f"{where}: duplicate of an earlier {rule.type} rule with threshold {rule.threshold}")
        seen.add((rule.type, rule.threshold))


def rules_from_config(configs: Iterable[AlertRuleConfig]) -> list[Rule]:
    """`alertRules` from the settings, checked like the API's; 80.0 from a file reads back as 80."""
    rules = [
        Rule(c.type, int(c.threshold) if float(c.threshold).is_integer() else c.threshold, c.cooldown_seconds)
        for c in configs
    ]
    check_rules(rules)
    return rules


def rules_from_doc(doc: dict[str, Any]) -> list[Rule]:
    """The rules a stored document holds (it may come from a restored backup: checked again)."""
    raw = doc.get("rules")
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise RuleError("rules must be a list of objects")
    rules = [Rule(r.get("type"), r.get("threshold"), r.get("cooldownSeconds", DEFAULT_COOLDOWN)) for r in raw]
    check_rules(rules)
    return rules


# --- the checks (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What the rules read about one key at one moment."""

    name: str
    credits: int
    total_spent: int
    expires_at: float | None
    now: float
    daily_calls: int = 0
    daily_call_limit: int = 0  # 0: no daily call quota
    rate_denials: int = 0  # rate-limit denials in the last SPIKE_WINDOW seconds


@dataclass(frozen=True, slots=True)
class Finding:
    value: Number
    message: str
    metadata: dict[str, Any] = field(default_factory=dict)


def spending_threshold(f: KeyFacts, threshold: Number) -> Finding | None:
    """Spent at least `threshold` percent of the initial credits (credits + totalSpent)."""
    budget = f.credits + f.total_spent
    if budget <= 0:
        return None
    percent = f.total_spent * 100 / budget
    if percent < threshold:
        return None
    return Finding(
        round(percent, 1),
        f'Key "{f.name}" has spent {percent:.0f}% of its credits ({f.total_spent}/{budget})',
        {"credits": f.credits, "totalSpent": f.total_spent, "totalBudget": budget},
    )


def credits_low(f: KeyFacts, threshold: Number) -> Finding | None:
    """Remaining credits below `threshold`."""
    if f.credits >= threshold:
        return None
    return Finding(
        f.credits,
        f'Key "{f.name}" has only {f.credits} credits remaining (threshold: {threshold})',
        {"credits": f.credits},
    )


def quota_warning(f: KeyFacts, threshold: Number) -> Finding | None:
    """Today's calls at least `threshold` percent of the daily call quota (none: never)."""
    if f.daily_call_limit <= 0:
        return None
    percent = f.daily_calls * 100 / f.daily_call_limit
    if percent < threshold:
        return None
    return Finding(
        round(percent, 1),
        f'Key "{f.name}" daily call quota at {percent:.0f}% ({f.daily_calls}/{f.daily_call_limit})',
        {"quotaType": "dailyCalls", "used": f.daily_calls, "limit": f.daily_call_limit},
    )


def key_expiry_soon(f: KeyFacts, threshold: Number) -> Finding | None:
    """Expires within `threshold` seconds (and has not expired yet)."""
    if f.expires_at is None:
        return None
    remaining = f.expires_at - f.now
    if remaining <= 0 or remaining > threshold:
        return None
    seconds = round(remaining)
    return Finding(
        seconds,
        f'Key "{f.name}" expires in {seconds} seconds ({iso_time(f.expires_at)})',
        {"expiresAt": iso_time(f.expires_at), "remainingSeconds": seconds},
    )


def rate_limit_spike(f: KeyFacts, threshold: Number) -> Finding | None:
    """At least `threshold` rate-limit denials in 5 minutes (and at least one: a spike needs denials)."""
    if f.rate_denials == 0 or f.rate_denials < threshold:
        return None
    return Finding(
        f.rate_denials,
        f'Key "{f.name}" hit {f.rate_denials} rate limit denials in 5 minutes (threshold: {threshold})',
        {"denialCount": f.rate_denials, "windowMinutes": 5},
    )


Check = Callable[[KeyFacts, Number], Finding | None]
CHECKS: dict[str, Check] = {
    "spending_threshold": spending_threshold,
    "credits_low": credits_low,
    "quota_warning": quota_warning,
    "key_expiry_soon": key_expiry_soon,
    "rate_limit_spike": rate_limit_spike,
}
assert set(CHECKS) == set(ALERT_TYPES)
