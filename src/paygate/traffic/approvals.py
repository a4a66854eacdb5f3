"""Approval workflows: a call that matches a rule waits for an admin's decision before it is gated at all.

A rule matches a call by one condition, as the reference names them: `cost_threshold` (the tool's list
price for these arguments is at least `value` credits), `tool_match` (the tool name matches the glob
`value`) or `key_match` (the key's alias or name starts with `value`). A matching `tools/call` becomes a
pending request (`approval.requested`, which webhooks and the admin event stream carry to whoever
decides) and the client's request waits. `POST /admin/approval-workflows {"action": "approve" | "deny",
"requestId"}` lets it go on — into the gate and the charge as any call — or refuses it; after the rule's
`timeoutSeconds` it is refused as expired. **A call is charged only if it was approved and then admitted
by the gate**; a denied, expired or abandoned request costs nothing.

The pending requests live in the instance whose client is waiting (a Redis fleet's admins decide on
that instance: `GET` there lists it). Calls that do not pass the call stages (batches, tasks, x402) cannot
wait: a matching one is refused (`approval_required`), before any charge. The rules are one JSON blob in
the store's meta (`traffic.approval_workflows`).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.core.domain_errors import Conflict, NotFound, TooLarge
from paygate.core.pricing import PriceBook, call_price
from paygate.core.records import KeyRecord
from paygate.events.hub import EventHub
from paygate.mcp.call_context import CallContext
from paygate.mcp.gate_answers import denial_error
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.store.meta_doc import MetaDoc
from paygate.traffic.chain import Proceed, ToolCall, Traffic

log = logging.getLogger("paygate.traffic")

META_APPROVALS = "traffic.approval_workflows"
CONDITIONS = ("cost_threshold", "tool_match", "key_match")
MAX_RULES = 100
MAX_PENDING = 1000
OUTCOMES = ("approved", "denied", "expired", "abandoned")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    condition: str
    value: str | int
    timeout_seconds: int
    created_at: float
    created_by: str

    def matches(self, tool: str, price: Callable[[], int], key: KeyRecord) -> bool:
        if self.condition == "cost_threshold":
            return price() >= int(self.value)
        if self.condition == "tool_match":
            return fnmatch.fnmatchcase(tool, str(self.value))
        names = (key.alias or "", key.name or "")
        return any(n.startswith(str(self.value)) for n in names if n)

    def stored(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "condition": self.condition,
            "value": self.value,
            "timeoutSeconds": self.timeout_seconds,
            "createdAt": self.created_at,
            "createdBy": self.created_by,
        }

    def view(self, triggered: int) -> dict[str, Any]:
        return {"id": self.id, **self.stored(), "createdAt": _iso(self.created_at), "triggered": triggered}


@dataclass(slots=True)
class Pending:
    id: str
    rule: Rule
    tool: str
    key_masked: str
    arguments_bytes: int
    created_at: float
    expires_at: float
    decided: asyncio.Future[tuple[str, str, str]] = field(repr=False)  # (outcome, actor, reason)

    def view(self) -> dict[str, Any]:
        return {
            "requestId": self.id,
            "ruleId": self.rule.id,
            "rule": self.rule.name,
            "tool": self.tool,
            "keyMasked": self.key_masked,
            "argumentsBytes": self.arguments_bytes,
            "createdAt": _iso(self.created_at),
            "expiresAt": _iso(self.expires_at),
        }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Approvals:
    """The rules, the pending requests, the call stage and the check for calls that cannot wait."""

    name = "approvals"

    def __init__(
        self,
        store: Store,
        events: EventHub,
        traffic: Traffic,
        prices: Callable[[], PriceBook],
        identify: Callable[[str | None], KeyRecord | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.events = events
        self.traffic = traffic
        self.prices = prices  # the price book in force (a config reload may replace it)
        self.identify = identify
        self.clock = clock
        self.rules: dict[str, Rule] = {}
        self.pending: dict[str, Pending] = {}
        self.triggered: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.enabled = False
        self.doc = MetaDoc(store, META_APPROVALS)

    # --- the call stage and the check ----------------------------------------------------------------
    def _rule_for(self, tool: str, params: dict[str, Any], key: KeyRecord) -> Rule | None:
        def price() -> int:
            arguments = params.get("arguments")
            size = len(orjson.dumps(arguments)) if arguments else 0
            return call_price(self.prices().for_tool(tool), size)

        return next((r for r in self.rules.values() if r.matches(tool, price, key)), None)

    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        key = self.identify(call.ctx.raw_key)
        rule = self._rule_for(call.tool, call.params, key) if key is not None else None
        if rule is None or key is None:
            return await proceed(call)
        refused = await self._wait(call, rule, key)
        return refused if refused is not None else await proceed(call)

    def refuse(self, msg_id: Any, tool: str, params: dict[str, Any], ctx: CallContext) -> Message | None:
        key = self.identify(ctx.raw_key)
        rule = self._rule_for(tool, params, key) if key is not None else None
        if rule is None:
            return None
        text = f"rule {rule.name!r} needs an admin's approval: send it as a plain tools/call"
        return denial_error(msg_id, "approval_required", text, {"tool": tool, "ruleId": rule.id})

    async def _wait(self, call: ToolCall, rule: Rule, key: KeyRecord) -> Message | None:
        """Wait for the decision: None when approved, else the refusal to answer with."""
        if len(self.pending) >= MAX_PENDING:
            text = f"{MAX_PENDING} requests are already waiting for approval"
            return denial_error(call.msg_id, "approval_denied", text, {"tool": call.tool, "ruleId": rule.id})
        now = self.clock()
        request_id = "apr_" + secrets.token_hex(8)
        size = len(orjson.dumps(call.params.get("arguments"))) if call.params.get("arguments") else 0
        decided: asyncio.Future[tuple[str, str, str]] = asyncio.get_running_loop().create_future()
        pending = Pending(request_id, rule, call.tool, key.masked, size, now, now + rule.timeout_seconds, decided)
        self.pending[request_id] = pending
        self.triggered[rule.id] += 1
        self.events.publish("approval.requested", key.masked, **pending.view())
        outcome, actor, reason = "abandoned", "client", ""
        try:
            outcome, actor, reason = await asyncio.wait_for(asyncio.shield(decided), rule.timeout_seconds)
        except TimeoutError:
            outcome, actor = "expired", "system"
        finally:
            self.pending.pop(request_id, None)
            self.outcomes[outcome] += 1
            if outcome in ("expired", "abandoned"):
                self.events.publish(f"approval.{outcome}", actor, requestId=request_id, tool=call.tool)
        if outcome == "approved":
            return None
        data = {"tool": call.tool, "ruleId": rule.id, "requestId": request_id}
        if outcome == "expired":
            return denial_error(call.msg_id, "approval_timeout", f"no decision within {rule.timeout_seconds} s", data)
        return denial_error(call.msg_id, "approval_denied", reason or "an admin denied it", data)

    # --- admin ---------------------------------------------------------------------------------------
    def decide(self, request_id: str, approve: bool, actor: str, reason: str) -> dict[str, Any]:
        pending = self.pending.get(request_id)
        if pending is None or pending.decided.done():
            raise NotFound(f"No pending approval request {request_id!r} on this instance")
        outcome = "approved" if approve else "denied"
        pending.decided.set_result((outcome, actor, reason))
        self.events.publish(f"approval.{outcome}", actor, requestId=request_id, tool=pending.tool, reason=reason)
        return {**pending.view(), "outcome": outcome}

    def add_rule(self, name: str, condition: str, value: str | int, timeout_seconds: int, actor: str) -> Rule:
        if any(r.name == name for r in self.rules.values()):
            raise Conflict(f"A rule named {name!r} exists")
        if len(self.rules) >= MAX_RULES:
            raise TooLarge(f"At most {MAX_RULES} approval rules")
        rule = Rule("apw_" + secrets.token_hex(6), name, condition, value, timeout_seconds, self.clock(), actor)
        self._save({**self.rules, rule.id: rule})
        self.events.publish("approval.rule_created", actor, ruleId=rule.id, name=name, condition=condition)
        return rule

    def remove_rule(self, rule_id: str, actor: str) -> Rule:
        rule = self.rules.get(rule_id)
        if rule is None:
            raise NotFound(f"No approval rule {rule_id!r}")
        self._save({k: v for k, v in self.rules.items() if k != rule_id})
        self.events.publish("approval.rule_deleted", actor, ruleId=rule_id, name=rule.name)
        return rule

    def view(self) -> dict[str, Any]:
        rules = [r.view(self.triggered[r.id]) for r in sorted(self.rules.values(), key=lambda r: r.created_at)]
        pending = [p.view() for p in sorted(self.pending.values(), key=lambda p: p.created_at)]
        stats = {o: self.outcomes[o] for o in OUTCOMES}
        return {"rules": rules, "pending": pending, "stats": stats, "maxRules": MAX_RULES, "maxPending": MAX_PENDING}

    # --- persistence ---------------------------------------------------------------------------------
    def _save(self, rules: dict[str, Rule]) -> None:
        self.doc.write({k: r.stored() for k, r in rules.items()})  # first: if the write fails nothing changed
        self._install(rules)

    def _install(self, rules: dict[str, Rule]) -> None:
        self.rules = rules
        self.traffic.switch(self, bool(rules))

    def reload(self, _now: float = 0.0) -> None:
        """Read the stored rules again if they changed (start-up; a fleet peer's change, on a ticker)."""
        rules = self.doc.read(_parse_rules, "approval rules")
        if rules is not None:
            self._install(rules)


def _parse_rules(stored: dict[str, Any]) -> dict[str, Rule]:
    return {
        rid: Rule(
            rid,
            str(doc["name"]),
            str(doc["condition"]),
            doc["value"],
            int(doc["timeoutSeconds"]),
            float(doc.get("createdAt") or 0),
            str(doc.get("createdBy") or ""),
        )
        for rid, doc in stored.items()
        if doc.get("condition") in CONDITIONS
    }


class ApprovalCollector(Collector):
    """`paygate_approval_requests_total{outcome}` and `paygate_approval_pending`."""

    def __init__(self, approvals: Approvals) -> None:
        self.approvals = approvals

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "paygate_approval_requests", "calls that waited for an approval, by outcome", labels=["outcome"]
        )
        for outcome in OUTCOMES:
            family.add_metric([outcome], self.approvals.outcomes[outcome])
        yield family
        yield GaugeMetricFamily(
            "paygate_approval_pending", "calls waiting for an approval now", value=len(self.approvals.pending)
        )
