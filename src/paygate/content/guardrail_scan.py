"""Finding the guardrails' matches in a call's arguments or result, and redacting them.

Only strings are looked at (object values and array items, not keys), at most MAX_DEPTH levels down and
MAX_SCAN_CHARS characters per call and direction: text beyond that is not scanned (the request body's own
limit bounds arguments long before; a result may be larger). In a result, binary payloads (`data`,
`blob`) and protocol fields (`_meta`, `type`, `mimeType`) are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from paygate.content.guardrail_rules import Rule

MAX_SCAN_CHARS = 1 << 20
MAX_DEPTH = 64
SKIPPED_KEYS = frozenset({"_meta", "data", "blob", "type", "mimeType"})


@dataclass(frozen=True, slots=True)
class Hit:
    rule: Rule
    path: str  # where, as a JSON path ($.a[0].b): recorded only with includeContext
    length: int  # of the matched text (the text itself is never kept)


def marker(rule: Rule) -> str:
    return f"[REDACTED:{rule.id}]"


class _Scan:
    def __init__(self, rules: list[Rule], redact: bool) -> None:
        self.rules = rules
        self.redact = redact
        self.budget = MAX_SCAN_CHARS
        self.hits: list[Hit] = []

    def text(self, value: str, path: str) -> str:
        if self.budget <= 0:
            return value
        self.budget -= len(value)
        out = value
        for rule in self.rules:
            found = [m for m in rule.compiled.finditer(value) if rule.check is None or rule.check(m.group())]
            if not found:
                continue
            self.hits.extend(Hit(rule, path, m.end() - m.start()) for m in found)
            if self.redact and rule.action == "redact":
                out = _redact(out, rule)
        return out

    def value(self, value: Any, path: str, depth: int, skip: frozenset[str]) -> Any:
        """The value, redacted where a `redact` rule matched: the same object when nothing changed."""
        if isinstance(value, str):
            return self.text(value, path)
        if depth >= MAX_DEPTH:
            return value
        if isinstance(value, dict):
            changed: dict[str, Any] | None = None
            for k, v in value.items():
                if k in skip:
                    continue
                new = self.value(v, f"{path}.{k}" if _plain(k) else f"{path}[{k!r}]", depth + 1, skip)
                if new is not v:
                    changed = changed if changed is not None else dict(value)
                    changed[k] = new
            return value if changed is None else changed
        if isinstance(value, list):
            items: list[Any] | None = None
            for i, v in enumerate(value):
                new = self.value(v, f"{path}[{i}]", depth + 1, skip)
                if new is not v:
                    items = items if items is not None else list(value)
                    items[i] = new
            return value if items is None else items
        return value


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _plain(key: str) -> bool:
    return _PLAIN.match(key) is not None


def _redact(text: str, rule: Rule) -> str:
    check = rule.check
    return rule.compiled.sub(lambda m: marker(rule) if check is None or check(m.group()) else m.group(), text)


def scan(value: Any, rules: list[Rule], *, redact: bool = True, result: bool = False) -> tuple[list[Hit], Any]:
    """The hits of `rules` in `value`, and `value` with the `redact` rules' matches replaced (the same
    object when nothing was replaced: callers test `is`). `result`: a tool result (skip binary fields)."""
    s = _Scan(rules, redact)
    out = s.value(value, "$", 0, SKIPPED_KEYS if result else frozenset())
    return s.hits, out
