"""The guardrails' rules: the reference's eight built-in PII detectors and the checks an admin's own
pattern must pass (docs/policy.md#guardrails).

Python's `re` has no timeout, so a pattern is kept cheap by what it may be: at most MAX_PATTERN characters,
no backreferences, and no repeat inside a repeat (`(a+)+`, `(\\w*)*`: the shapes whose backtracking grows
exponentially with the input). The text scanned per call is bounded too (guardrails.MAX_SCAN_CHARS).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from paygate.core.domain_errors import Invalid
from paygate.core.values import iso_time

# The stdlib's own pattern parser (what re.compile uses): to refuse nested repeats before compiling.
sre_parse: Any = importlib.import_module("re._parser")

Action = Literal["log", "warn", "block", "redact"]
Scope = Literal["input", "output", "both"]
ACTIONS: tuple[str, ...] = ("log", "warn", "block", "redact")
SCOPES: tuple[str, ...] = ("input", "output", "both")
MAX_PATTERN = 500


def luhn(digits: str) -> bool:
    """The card-number checksum: cuts the false positives of a bare 13-19 digit pattern."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and luhn(digits)


def _iban(text: str) -> bool:
    """ISO 13616's mod-97 check."""
    compact = text.replace(" ", "")
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return 15 <= len(compact) <= 34 and int(number) % 97 == 1


@dataclass(frozen=True, slots=True)
class Builtin:
    id: str
    name: str
    pattern: str
    check: Callable[[str], bool] | None = None  # a match counts only if this holds


BUILTINS: tuple[Builtin, ...] = (
    Builtin("pii_credit_card", "Credit card number (Luhn-checked)", r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", _card),
    Builtin("pii_ssn", "US Social Security number", r"(?<!\d)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)"),
    Builtin(
        "pii_email",
        "Email address",
        r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}",
    ),
    Builtin(
        "pii_phone",
        "Phone number",
        r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]?\d{3,4}(?![\w])",
    ),
    Builtin("secret_aws_key", "AWS access key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    Builtin(
        "secret_api_key",
        "API secret or token",
        r"\b(?:[sr]k_(?:live|test)_[0-9A-Za-z]{16,99}|gh[pousr]_[0-9A-Za-z]{36}|xox[abpr]-[0-9A-Za-z-]{10,99}"
        r"|AIza[0-9A-Za-z_-]{35}|sk-[0-9A-Za-z_-]{20,199})\b"
        r"|(?i:\b(?:api[_-]?key|secret|access[_-]?token|password)\b[\"']?\s{0,4}[:=]\s{0,4}[\"']?[^\s\"']{8,200})",
    ),
    Builtin("pii_iban", "IBAN (mod-97 checked)", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", _iban),
    Builtin(
        "pii_passport",
        "Passport number (after the word passport)",
        r"(?i:\bpassport(?:\s{0,4}(?:no|number|#))?\.?\s{0,4}[:#]?\s{0,4})[A-Z0-9]{6,9}\b",
    ),
)
BUILTIN_IDS = frozenset(b.id for b in BUILTINS)


@dataclass(slots=True)
class Rule:
    """One rule as it is in force: a built-in (its pattern fixed) or an admin's own."""

    id: str
    name: str
    pattern: str
    action: str
    scope: str
    tools: list[str]  # empty: every tool; a name ending in `*` matches by prefix
    enabled: bool
    builtin: bool
    created_at: float
    created_by: str
    check: Callable[[str], bool] | None = None
    compiled: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.compiled = re.compile(self.pattern)

    def applies(self, tool: str, scope: str) -> bool:
        if not self.enabled or (self.scope != "both" and self.scope != scope):
            return False
        return not self.tools or any(t == tool or (t.endswith("*") and tool.startswith(t[:-1])) for t in self.tools)

    def stored(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "action": self.action,
            "scope": self.scope,
            "tools": self.tools,
            "enabled": self.enabled,
            "createdAt": self.created_at,
            "createdBy": self.created_by,
        }
        if not self.builtin:
            doc |= {"name": self.name, "pattern": self.pattern}
        return doc

    def view(self) -> dict[str, Any]:
        doc = {"id": self.id, "name": self.name, "pattern": self.pattern, "builtin": self.builtin, **self.stored()}
        doc["createdAt"] = iso_time(self.created_at) if self.created_at else None  # a built-in never changed: None
        return doc


def default_builtin(b: Builtin) -> Rule:
    """A built-in as it starts: off, redacting, both ways, every tool (an admin switches it on)."""
    return Rule(b.id, b.name, b.pattern, "redact", "both", [], False, True, 0.0, "system", b.check)


def _nested_repeat(items: Any, inside_repeat: bool) -> str | None:
    """Why a parsed pattern could backtrack exponentially (a repeat in a repeat, a backreference), or None."""
    for op, arg in items:
        name = str(op)
        if name in ("GROUPREF", "GROUPREF_EXISTS"):
            return "backreferences are not allowed"
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            _low, high, sub = arg
            repeats = high is sre_parse.MAXREPEAT or high > 1
            if repeats and inside_repeat:
                return "a repeated group may not contain another repeat (e.g. (a+)+): it can backtrack exponentially"
            found = _nested_repeat(sub, inside_repeat or repeats)
        elif name == "SUBPATTERN":
            found = _nested_repeat(arg[-1], inside_repeat)
        elif name == "BRANCH":
            found = next((w for b in arg[1] if (w := _nested_repeat(b, inside_repeat)) is not None), None)
        elif name in ("ASSERT", "ASSERT_NOT"):
            found = _nested_repeat(arg[1], inside_repeat)
        else:
            found = None
        if found is not None:
            return found
    return None


def check_pattern(pattern: str) -> re.Pattern[str]:
    """An admin's pattern compiled, or Invalid saying why it is refused."""
    if not pattern or len(pattern) > MAX_PATTERN:
        raise Invalid(f"Invalid request: pattern must be 1 to {MAX_PATTERN} characters")
    try:
        parsed = sre_parse.parse(pattern)
        compiled = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise Invalid(f"Invalid request: pattern is not a valid regular expression: {exc}") from None
    why = _nested_repeat(parsed.data, False)
    if why is not None:
        raise Invalid(f"Invalid request: pattern refused: {why}")
    if compiled.search("") is not None:
        raise Invalid("Invalid request: pattern matches the empty string")
    return compiled
