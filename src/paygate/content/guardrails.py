"""Content guardrails (docs/policy.md#guardrails): a call stage that looks for PII and secrets in a call's
arguments (input) and in its result (output), and logs, warns, blocks or redacts.

* input, before the gate: `block` refuses the call with -32602 (`data.reason: guardrail_violation`) and
  nothing is charged; `redact` replaces each match with `[REDACTED:<rule id>]` in the arguments the backend
  (and the price's input size) then sees.
* output, after the backend answered: `block` withholds the result (the same error) and the call's charge
  is refunded in full whatever `refundOnFailure` says (the dispatcher settles it as undelivered, through
  `notes["withhold"]`, before its gate.allow is published); `redact` replaces matches in the result.
* `warn` lets the call through with `X-Guardrail-Warning: <rule ids>`; `log` only records.

Every match is recorded as a violation (rule, tool, masked key, scope, action, count, when; with
`includeContext` the JSON path where it was found): never the matched text. The violation log is per
instance, in memory, bounded (`maxViolations`); the `guardrail.violation` event carries the same fields
into the audit log. Rules and the on/off toggle are kept in the store's meta (`content.guardrails`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.billing.service import BillingService
from paygate.content.guardrail_rules import BUILTINS, Rule, default_builtin
from paygate.content.guardrail_scan import Hit, scan
from paygate.core import errors
from paygate.core.values import iso_time
from paygate.events.hub import EventHub
from paygate.mcp import jsonrpc
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.traffic.chain import Proceed, ToolCall

log = logging.getLogger("paygate.content")

META_GUARDRAILS = "content.guardrails"
WITHHOLD = "withhold"  # the ToolCall note the dispatcher consults before it settles (mcp/dispatcher.py)


@dataclass(slots=True)
class Violation:
    seq: int
    rule_id: str
    tool: str
    key_masked: str | None
    scope: str
    action: str
    count: int
    at: float
    paths: list[str] | None

    def view(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.seq,
            "ruleId": self.rule_id,
            "tool": self.tool,
            "keyMasked": self.key_masked,
            "scope": self.scope,
            "action": self.action,
            "count": self.count,
            "timestamp": iso_time(self.at),
        }
        if self.paths is not None:
            doc["paths"] = self.paths
        return doc


def blocked(msg_id: Any, tool: str, scope: str, rules: list[str]) -> Message:
    what = "arguments" if scope == "input" else "result"
    return jsonrpc.error(
        msg_id,
        errors.INVALID_PARAMS,
        f"Blocked by a guardrail: the {what} of {tool} matched {', '.join(rules)}",
        {"reason": "guardrail_violation", "tool": tool, "scope": scope, "rules": rules},
    )


class Guardrails:
    """The rules, the toggle, the violation log and the call stage. Admin operations live in
    guardrails_admin.GuardrailsAdmin (which calls `install`)."""

    name = "guardrails"

    def __init__(
        self,
        store: Store,
        events: EventHub,
        billing: BillingService,
        refresh: Callable[[], None],
        *,
        on: bool,
        include_context: bool,
        max_violations: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.events = events
        self.billing = billing
        self._refresh = refresh
        self.on = on  # the runtime toggle
        self.include_context = include_context
        self.clock = clock
        self.rules: dict[str, Rule] = {b.id: default_builtin(b) for b in BUILTINS}
        self.violations: deque[Violation] = deque(maxlen=max_violations)
        self.counts: Counter[tuple[str, str]] = Counter()  # (rule id, action) → matches
        self._seq = 0
        self.enabled = False
        self.raw: str | None = None  # the stored document this instance last read or wrote

    # --- the call stage ----------------------------------------------------------------------------
    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        rules_in = [r for r in self.rules.values() if r.applies(call.tool, "input")]
        arguments = call.params.get("arguments")
        if rules_in and isinstance(arguments, dict):
            hits, redacted = scan(arguments, rules_in)
            if hits:
                if self._refused_by_gate(call):
                    return await proceed(call)  # the gate refuses it as ever; nothing recorded for it
                self._record(call, "input", hits)
                block = sorted({h.rule.id for h in hits if h.rule.action == "block"})
                if block:
                    return blocked(call.msg_id, call.tool, "input", block)
                if redacted is not arguments:
                    call.params = {**call.params, "arguments": redacted}  # a new dict: the client's is kept
                self._warn(call, hits)
        rules_out = [r for r in self.rules.values() if r.applies(call.tool, "output")]
        if not rules_out:
            return await proceed(call)
        screened: list[Message | None] = []

        def withhold(reply: Message) -> Message | None:
            """Before the charge is settled: the answer to send instead of a result a rule blocks."""
            instead = self._screen(call, reply, rules_out, block_only=True)
            screened.append(instead)
            return instead

        call.notes[WITHHOLD] = withhold
        reply = await proceed(call)
        if screened and screened[0] is not None:
            return reply  # withheld and refunded by the dispatcher; recorded already
        if not screened:  # answered without running here (the cache, a dedup replay): nothing was charged for it
            instead = self._screen(call, reply, rules_out, block_only=True)
            if instead is not None:
                return instead
        return self._screen(call, reply, rules_out, block_only=False) or reply

    def applies(self, tool: str) -> bool:
        return self.enabled and any(r.applies(tool, "input") or r.applies(tool, "output") for r in self.rules.values())

    def _screen(self, call: ToolCall, reply: Message, rules: list[Rule], block_only: bool) -> Message | None:
        """Output: with `block_only`, the error to answer if a blocking rule matches (recording every hit);
        otherwise the reply with redactions (recording non-blocking hits), or None for no change."""
        result = reply.get("result")
        if not isinstance(result, dict) or result.get("isError") is True:
            return None
        if block_only:
            if not any(r.action == "block" for r in rules):
                return None
            hits, _ = scan(result, rules, redact=False, result=True)
            block = sorted({h.rule.id for h in hits if h.rule.action == "block"})
            if not block:
                return None
            self._record(call, "output", hits)
            return blocked(call.msg_id, call.tool, "output", block)
        hits, redacted = scan(result, rules, result=True)
        if not hits:
            return None
        self._record(call, "output", hits)
        self._warn(call, hits)
        return {**reply, "result": redacted} if redacted is not result else None

    def _refused_by_gate(self, call: ToolCall) -> bool:
        ctx = call.ctx
        return self.billing.check_call_access(ctx.raw_key, call.tool, ctx.client)[1] is not None

    def _warn(self, call: ToolCall, hits: list[Hit]) -> None:
        warned = sorted({h.rule.id for h in hits if h.rule.action == "warn"})
        if warned:
            call.ctx.add_header(b"x-guardrail-warning", ",".join(warned).encode())

    def _record(self, call: ToolCall, scope: str, hits: list[Hit]) -> None:
        key = self.billing.resolve(call.ctx.raw_key)
        masked = key.masked if key is not None else None
        by_rule: dict[str, list[Hit]] = {}
        for hit in hits:
            by_rule.setdefault(hit.rule.id, []).append(hit)
        now = self.clock()
        for rule_id, found in by_rule.items():
            rule = found[0].rule
            self._seq += 1
            paths = sorted({h.path for h in found})[:20] if self.include_context else None
            self.violations.append(
                Violation(self._seq, rule_id, call.tool, masked, scope, rule.action, len(found), now, paths)
            )
            self.counts[(rule_id, rule.action)] += len(found)
        self.events.emit(
            "guardrail.violation",
            masked or "anonymous",
            {
                "tool": call.tool,
                "keyMasked": masked,
                "scope": scope,
                "rules": {rule_id: len(found) for rule_id, found in sorted(by_rule.items())},
                "actions": sorted({h.rule.action for h in hits}),
            },
            request_id=call.ctx.request_id,
            key_hash=key.key_hash if key is not None else None,
        )

    # --- state ---------------------------------------------------------------------------------------
    def install(self, on: bool, rules: dict[str, Rule]) -> None:
        self.on, self.rules = on, rules
        enabled = on and any(r.enabled for r in rules.values())
        if enabled != self.enabled:
            self.enabled = enabled
            self._refresh()

    def save(self, on: bool, rules: dict[str, Rule]) -> None:
        """Store, then install: if the write fails nothing changed."""
        doc = {"enabled": on, "rules": {rid: r.stored() for rid, r in rules.items()}}
        raw = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()
        self.store.set_meta(META_GUARDRAILS, raw)
        self.raw = raw
        self.install(on, rules)


class GuardrailCollector(Collector):
    """`paygate_guardrail_violations_total{rule, action}`: matches found (rules are at most 8 + 200)."""

    def __init__(self, guardrails: Guardrails) -> None:
        self.guardrails = guardrails

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "paygate_guardrail_violations",
            "Guardrail rule matches in tool call arguments and results",
            labels=["rule", "action"],
        )
        for (rule, action), n in sorted(self.guardrails.counts.items()):
            family.add_metric([rule, action], n)
        yield family
