"""Request and response transforms (docs/policy.md#transforms): declarative rewrites of a call's arguments
before it runs and of its result after, per tool.

A rule names its tools (`tool`: a name, `prefix*`, or `*`), a `direction` (request or response), a
`priority` and a list of operations on paths (dot-separated object keys):

    {"op": "set", "path": "options.lang", "value": "en"}       set (templates: {{tool}} {{keyName}} ...)
    {"op": "default", "path": "limit", "value": 10}             set only if absent
    {"op": "remove", "path": "debug"}                           drop
    {"op": "rename", "from": "q", "to": "query"}                move

Rules apply in ascending `priority`, then in the order they were created. A request rule's paths are in
the call's `arguments` and a response rule's in its `result`: nothing can reach the tool's name, so the
price, the key's ACL, quotas and reports are always those of the tool the client named (after any alias).
Request transforms run before schema validation and the guardrails, so those judge what the backend gets;
response transforms run after the call is settled, so the output-size surcharge is on the backend's answer.
Every rewrite works on a copy: the client's request and a cached answer are never changed.
"""

from __future__ import annotations

import copy
import logging
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.billing.service import BillingService
from paygate.core.domain_errors import Invalid, NotFound, TooLarge
from paygate.core.values import iso_time
from paygate.events.hub import EventHub
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.store.meta_doc import MetaDoc
from paygate.traffic.chain import Proceed, ToolCall

log = logging.getLogger("paygate.content")

META_TRANSFORMS = "content.transforms"
MAX_RULES = 200
MAX_OPS = 20
MAX_DEPTH = 10  # path segments
MAX_VALUE_BYTES = 8 * 1024
MAX_TOTAL_BYTES = 1 << 20  # every transform together (one meta value)
VARIABLES = ("tool", "requestId", "keyName", "namespace", "timestamp")
TEMPLATE = re.compile(r"\{\{\s*([A-Za-z]+)\s*\}\}")
SEGMENT = re.compile(r"^[^.\s]{1,128}$")


def _path(value: Any, what: str) -> list[str]:
    if not isinstance(value, str) or not value:
        raise Invalid(f"Invalid request: {what} must be a dot-separated path")
    parts = value.split(".")
    if len(parts) > MAX_DEPTH or not all(SEGMENT.match(p) for p in parts):
        raise Invalid(f"Invalid request: {what}: at most {MAX_DEPTH} non-empty segments without spaces")
    return parts


def _templates(value: Any) -> None:
    """Refuse a value naming a variable there is none of."""
    if isinstance(value, str):
        for name in TEMPLATE.findall(value):
            if name not in VARIABLES:
                raise Invalid(
                    f"Invalid request: unknown template variable {{{{{name}}}}} (known: {', '.join(VARIABLES)})"
                )
    elif isinstance(value, dict):
        for v in value.values():
            _templates(v)
    elif isinstance(value, list):
        for v in value:
            _templates(v)


def check_op(op: Any) -> dict[str, Any]:
    if not isinstance(op, dict):
        raise Invalid("Invalid request: each operation is an object")
    kind = op.get("op")
    fields = {"set": {"op", "path", "value"}, "default": {"op", "path", "value"}, "remove": {"op", "path"}}
    fields["rename"] = {"op", "from", "to"}
    if kind not in fields:
        raise Invalid("Invalid request: op must be one of set, default, remove, rename")
    if set(op) != fields[kind]:
        raise Invalid(f"Invalid request: a {kind} operation has exactly {', '.join(sorted(fields[kind]))}")
    if kind == "rename":
        _path(op["from"], "from")
        _path(op["to"], "to")
    else:
        _path(op["path"], "path")
    if "value" in op:
        if len(orjson.dumps(op["value"])) > MAX_VALUE_BYTES:
            raise TooLarge(f"A value is at most {MAX_VALUE_BYTES} bytes")
        _templates(op["value"])
    return dict(op)


@dataclass(slots=True)
class Transform:
    id: str
    tool: str
    direction: str  # request | response
    ops: list[dict[str, Any]]
    priority: int
    enabled: bool
    created_at: float
    created_by: str
    seq: int  # creation order, the tie-break after priority

    def matches(self, tool: str) -> bool:
        t = self.tool
        return t == "*" or t == tool or (t.endswith("*") and tool.startswith(t[:-1]))

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tool": self.tool,
            "direction": self.direction,
            "operations": self.ops,
            "priority": self.priority,
            "enabled": self.enabled,
            "createdAt": iso_time(self.created_at),
            "createdBy": self.created_by,
        }

    def stored(self) -> dict[str, Any]:
        return {**self.view(), "createdAt": self.created_at, "seq": self.seq}


def _fill(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        return TEMPLATE.sub(lambda m: variables.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {k: _fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    return value


def _parent(doc: dict[str, Any], parts: list[str], create: bool) -> dict[str, Any] | None:
    node: Any = doc
    for part in parts[:-1]:
        child = node.get(part)
        if child is None and create:
            child = node[part] = {}
        if not isinstance(child, dict):
            return None
        node = child
    return node if isinstance(node, dict) else None


def apply_ops(doc: dict[str, Any], ops: list[dict[str, Any]], variables: dict[str, str]) -> None:
    """Apply the operations to `doc` in place (the caller passes a copy)."""
    for op in ops:
        kind = op["op"]
        if kind == "rename":
            source, target = op["from"].split("."), op["to"].split(".")
            holder = _parent(doc, source, False)
            if holder is None or source[-1] not in holder:
                continue
            moved = holder.pop(source[-1])
            dest = _parent(doc, target, True)
            if dest is not None:
                dest[target[-1]] = moved
            continue
        parts = op["path"].split(".")
        if kind == "remove":
            holder = _parent(doc, parts, False)
            if holder is not None:
                holder.pop(parts[-1], None)
            continue
        holder = _parent(doc, parts, True)
        if holder is not None and (kind == "set" or parts[-1] not in holder):
            holder[parts[-1]] = _fill(copy.deepcopy(op["value"]), variables)


class Transforms:
    """The rules, their admin operations (each publishes its audit event) and the call stage."""

    name = "transforms"

    def __init__(
        self,
        store: Store,
        events: EventHub,
        billing: BillingService,
        refresh: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.events = events
        self.billing = billing
        self._refresh = refresh
        self.clock = clock
        self.rules: dict[str, Transform] = {}
        self.applied: Counter[str] = Counter()  # calls rewritten since start, by direction
        self.enabled = False
        self._ordered: tuple[Transform, ...] = ()
        self.doc = MetaDoc(store, META_TRANSFORMS)

    # --- the call stage ----------------------------------------------------------------------------
    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        request = [t for t in self._ordered if t.direction == "request" and t.matches(call.tool)]
        response = [t for t in self._ordered if t.direction == "response" and t.matches(call.tool)]
        if not request and not response:
            return await proceed(call)
        variables = self._variables(call)
        arguments = call.params.get("arguments", {})
        if request and isinstance(arguments, dict):
            rewritten = copy.deepcopy(arguments)  # the client's arguments are never changed
            for t in request:
                apply_ops(rewritten, t.ops, variables)
            self.applied["request"] += 1
            call.params = {**call.params, "arguments": rewritten}  # only the arguments: never the tool's name
        reply = await proceed(call)
        result = reply.get("result")
        if not response or "error" in reply or not isinstance(result, dict):
            return reply
        rewritten = copy.deepcopy(result)  # a cached answer is shared: rewrite a copy
        for t in response:
            apply_ops(rewritten, t.ops, variables)
        self.applied["response"] += 1
        return {**reply, "result": rewritten}

    def applies(self, tool: str) -> bool:
        return self.enabled and any(t.matches(tool) for t in self._ordered)

    def _variables(self, call: ToolCall) -> dict[str, str]:
        key = self.billing.resolve(call.ctx.raw_key)
        now = datetime.fromtimestamp(self.clock(), UTC).isoformat().replace("+00:00", "Z")
        return {
            "tool": call.tool,
            "requestId": call.ctx.request_id,
            "keyName": key.name if key is not None else "",
            "namespace": key.namespace if key is not None else "",
            "timestamp": now,
        }

    # --- admin ---------------------------------------------------------------------------------------
    def put(self, doc: dict[str, Any], actor: str, rule_id: str | None = None) -> Transform:
        """Add a rule (rule_id None) or replace one (PUT): checked whole before anything changes."""
        ops = doc["operations"]
        if not ops or len(ops) > MAX_OPS:
            raise Invalid(f"Invalid request: operations: 1 to {MAX_OPS}")
        checked = [check_op(op) for op in ops]
        old = self.rules.get(rule_id) if rule_id is not None else None
        if rule_id is not None and old is None:
            raise NotFound(f"No transform {rule_id!r}")
        if old is None and len(self.rules) >= MAX_RULES:
            raise TooLarge(f"At most {MAX_RULES} transforms")
        seq = old.seq if old is not None else max((t.seq for t in self.rules.values()), default=0) + 1
        rule = Transform(
            rule_id or f"tr_{secrets.token_hex(6)}",
            doc["tool"],
            doc["direction"],
            checked,
            doc.get("priority", 0),
            doc.get("enabled", True),
            old.created_at if old is not None else self.clock(),
            actor,
            seq,
        )
        self._save({**self.rules, rule.id: rule})
        self.events.publish(
            "content.transform_set",
            actor,
            id=rule.id,
            tool=rule.tool,
            direction=rule.direction,
            replaced=old is not None,
        )
        return rule

    def remove(self, rule_id: str, actor: str) -> Transform:
        rule = self.rules.get(rule_id)
        if rule is None:
            raise NotFound(f"No transform {rule_id!r}")
        self._save({k: v for k, v in self.rules.items() if k != rule_id})
        self.events.publish("content.transform_removed", actor, id=rule_id, tool=rule.tool)
        return rule

    def views(self) -> dict[str, Any]:
        rules = [t.view() for t in self._ordered_all()]
        return {"transforms": rules, "count": len(rules), "max": MAX_RULES, "applied": dict(self.applied)}

    def _ordered_all(self) -> list[Transform]:
        return sorted(self.rules.values(), key=lambda t: (t.priority, t.seq))

    # --- persistence ---------------------------------------------------------------------------------
    def _save(self, rules: dict[str, Transform]) -> None:
        stored = {t.id: t.stored() for t in rules.values()}
        if len(self.doc.encode(stored)) > MAX_TOTAL_BYTES:
            raise TooLarge(f"The transforms together would be over {MAX_TOTAL_BYTES} bytes")
        self.doc.write(stored)  # first: if the write fails nothing changed
        self._install(rules)

    def _install(self, rules: dict[str, Transform]) -> None:
        self.rules = rules
        self._ordered = tuple(t for t in self._ordered_all() if t.enabled)
        on = bool(self._ordered)
        if on != self.enabled:
            self.enabled = on
            self._refresh()

    def reload(self) -> None:
        """Read the stored rules again if they changed (start; a fleet peer's change, on a ticker)."""
        rules = self.doc.read(_parse_transforms, "transforms", (Invalid, TooLarge))
        if rules is not None:
            self._install(rules)


class TransformCollector(Collector):
    """`paygate_transforms_applied_total{direction}`: calls whose arguments or result a transform rewrote."""

    def __init__(self, transforms: Transforms) -> None:
        self.transforms = transforms

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "paygate_transforms_applied", "Tool calls rewritten by a transform, by direction", labels=["direction"]
        )
        for direction, n in sorted(self.transforms.applied.items()):
            family.add_metric([direction], n)
        yield family


def _parse_transforms(stored: dict[str, Any]) -> dict[str, Transform]:
    return {
        rule_id: Transform(
            rule_id,
            str(d["tool"]),
            str(d["direction"]),
            [check_op(op) for op in d["operations"]],
            int(d["priority"]),
            bool(d["enabled"]),
            float(d["createdAt"]),
            str(d["createdBy"]),
            int(d["seq"]),
        )
        for rule_id, d in stored.items()
    }
