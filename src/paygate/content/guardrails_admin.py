"""The guardrails' admin operations (GET/POST/DELETE /admin/guardrails, /admin/guardrails/violations):
each change is checked, stored, installed and published as one event (docs/policy.md#guardrails)."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import replace
from typing import Any

import orjson

from paygate.content.guardrail_rules import BUILTINS, Rule, check_pattern, default_builtin
from paygate.content.guardrails import META_GUARDRAILS, Guardrails
from paygate.core.domain_errors import Invalid, NotFound, TooLarge

log = logging.getLogger("paygate.content")

MAX_CUSTOM_RULES = 200
RULE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_BUILTIN = {b.id: b for b in BUILTINS}


class GuardrailsAdmin:
    def __init__(self, guardrails: Guardrails) -> None:
        self.g = guardrails

    def view(self) -> dict[str, Any]:
        g = self.g
        return {
            "enabled": g.on,
            "active": g.enabled,  # on, with at least one rule switched on
            "includeContext": g.include_context,
            "maxViolations": g.violations.maxlen,
            "rules": [r.view() for r in g.rules.values()],
            "violations": len(g.violations),
        }

    def toggle(self, on: bool, actor: str) -> None:
        self.g.save(on, self.g.rules)
        self.g.events.publish("guardrail.toggled", actor, enabled=on)

    def set_rule(self, fields: dict[str, Any], actor: str) -> Rule:
        """Add a custom rule, or change a rule (a built-in's pattern and name are fixed)."""
        g = self.g
        rule_id = fields.get("id")
        old = g.rules.get(rule_id) if rule_id is not None else None
        if rule_id is not None and not RULE_ID.match(rule_id):
            raise Invalid("Invalid request: id: 1-64 letters, digits, '_', '.', '-'")
        if old is not None and old.builtin and ("pattern" in fields or "name" in fields):
            raise Invalid(f"Invalid request: {rule_id} is a built-in rule: its pattern and name are fixed")
        if old is None:
            if "pattern" not in fields:
                raise Invalid("Invalid request: pattern is required for a new rule")
            if sum(not r.builtin for r in g.rules.values()) >= MAX_CUSTOM_RULES:
                raise TooLarge(f"At most {MAX_CUSTOM_RULES} custom guardrail rules")
            rule_id = rule_id or f"custom_{secrets.token_hex(4)}"
            check_pattern(fields["pattern"])
            rule = Rule(
                rule_id,
                fields.get("name") or rule_id,
                fields["pattern"],
                fields.get("action", "block"),
                fields.get("scope", "both"),
                list(fields.get("tools") or []),
                fields.get("enabled", True),
                False,
                g.clock(),
                actor,
            )
        else:
            if "pattern" in fields:
                check_pattern(fields["pattern"])
            changes: dict[str, Any] = {
                k: fields[k] for k in ("name", "pattern", "action", "scope", "enabled") if k in fields
            }
            if "tools" in fields:
                changes["tools"] = list(fields["tools"] or [])
            rule = replace(old, **changes, created_by=actor) if changes or old.builtin else old
            if old.builtin and rule.created_at == 0.0:
                rule.created_at = g.clock()
        assert rule_id is not None
        g.save(g.on, {**g.rules, rule_id: rule})
        g.events.publish(
            "guardrail.rule_set", actor, ruleId=rule_id, action=rule.action, scope=rule.scope, enabled=rule.enabled
        )
        return rule

    def remove(self, rule_id: str, actor: str) -> Rule:
        """Remove a custom rule; a built-in goes back to its default (off)."""
        g = self.g
        old = g.rules.get(rule_id)
        if old is None:
            raise NotFound(f"No guardrail rule {rule_id!r}")
        rules = dict(g.rules)
        if old.builtin:
            rules[rule_id] = default_builtin(_BUILTIN[rule_id])
        else:
            del rules[rule_id]
        g.save(g.on, rules)
        g.events.publish("guardrail.rule_removed", actor, ruleId=rule_id, builtin=old.builtin)
        return old

    def violations(self, tool: str | None, rule_id: str | None, limit: int) -> dict[str, Any]:
        found = [
            v.view()
            for v in reversed(self.g.violations)
            if (tool is None or v.tool == tool) and (rule_id is None or v.rule_id == rule_id)
        ]
        return {"violations": found[:limit], "total": len(found), "max": self.g.violations.maxlen}

    def clear_violations(self, actor: str) -> int:
        cleared = len(self.g.violations)
        self.g.violations.clear()
        self.g.events.publish("guardrail.violations_cleared", actor, cleared=cleared)
        return cleared

    def reload(self) -> None:
        """Read the stored toggle and rules again if they changed (start; a fleet peer's change)."""
        g = self.g
        raw = g.store.get_meta(META_GUARDRAILS)
        if raw is None or raw == g.raw:
            return
        g.raw = raw
        try:
            doc = orjson.loads(raw)
            rules = {b.id: default_builtin(b) for b in BUILTINS}
            for rule_id, r in doc["rules"].items():
                builtin = _BUILTIN.get(rule_id)
                pattern = builtin.pattern if builtin else str(r["pattern"])
                if builtin is None:
                    check_pattern(pattern)
                rules[rule_id] = Rule(
                    rule_id,
                    builtin.name if builtin else str(r.get("name") or rule_id),
                    pattern,
                    str(r["action"]),
                    str(r["scope"]),
                    [str(t) for t in r.get("tools") or []],
                    bool(r["enabled"]),
                    builtin is not None,
                    float(r.get("createdAt") or 0),
                    str(r.get("createdBy") or ""),
                    builtin.check if builtin else None,
                )
            on = bool(doc["enabled"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, Invalid):
            log.error("the stored guardrails (%s) are malformed: ignored", META_GUARDRAILS)
            return
        g.install(on, rules)
