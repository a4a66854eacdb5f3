"""Tool dependencies: a tool a key may call only after it has called others successfully, recently.

`POST /admin/tool-deps {"tool": "deploy", "dependsOn": ["run_tests"], "windowSeconds": 3600}` means: a
key's call of `deploy` needs a successful call of `run_tests` by the same key within the last hour. A
*hard* dependency refuses the call otherwise (`dependency_not_met`, before any charge); a *soft* one lets
it through with an `X-Dependency-Warning` header. A failed upstream call (an error, or a result with
`isError`) wipes the key's earlier success of that tool: a failure upstream blocks downstream until the
upstream tool succeeds again. The graph must stay acyclic (a cycle could never be entered), so an edge
that would close one is refused; `order` in the listing is a topological order of the registered tools.

A call stage after the aliases (calls are judged by their real name) and before dedup and the cache (a
replayed or cached answer cannot skip the rule). The successes are remembered per instance (at most
`MAX_REMEMBERED` key/tool pairs, the oldest first forgotten): in a Redis fleet without session affinity a
key's upstream call on one instance is not seen by another. The table is one JSON blob in the store's
meta (`traffic.tool_deps`); a restart keeps it and a fleet's peers re-read it every few seconds.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.core.domain_errors import Conflict, Invalid, NotFound, TooLarge
from paygate.core.records import KeyRecord
from paygate.events.hub import EventHub
from paygate.mcp import jsonrpc
from paygate.mcp.call_context import CallContext
from paygate.mcp.gate_answers import denial_error
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.store.meta_doc import MetaDoc
from paygate.traffic.chain import Proceed, ToolCall, Traffic

log = logging.getLogger("paygate.traffic")

META_TOOL_DEPS = "traffic.tool_deps"
MAX_RULES = 500
MAX_UPSTREAM = 20
MAX_REMEMBERED = 100_000


@dataclass(frozen=True, slots=True)
class Dependency:
    tool: str
    depends_on: tuple[str, ...]
    hard: bool
    window_seconds: int
    created_at: float
    created_by: str

    def stored(self) -> dict[str, Any]:
        return {
            "dependsOn": list(self.depends_on),
            "hard": self.hard,
            "windowSeconds": self.window_seconds,
            "createdAt": self.created_at,
            "createdBy": self.created_by,
        }

    def view(self) -> dict[str, Any]:
        return {"tool": self.tool, **self.stored(), "createdAt": _iso(self.created_at)}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class ToolDependencies:
    """The dependency table, its admin operations and its call stage."""

    name = "tool_deps"

    def __init__(
        self,
        store: Store,
        events: EventHub,
        traffic: Traffic,
        tool_names: Callable[[], Collection[str]],
        identify: Callable[[str | None], KeyRecord | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.events = events
        self.traffic = traffic
        self.tool_names = tool_names
        self.identify = identify
        self.clock = clock
        self.table: dict[str, Dependency] = {}
        self.upstream: frozenset[str] = frozenset()  # tools some rule depends on: their outcomes are recorded
        self.enabled = False
        self.refused: Counter[str] = Counter()
        self.warned: Counter[str] = Counter()
        self._done: OrderedDict[tuple[str, str], float] = OrderedDict()  # (key hash, tool) -> last success
        self.doc = MetaDoc(store, META_TOOL_DEPS)

    # --- the call stage ----------------------------------------------------------------------------
    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        rule = self.table.get(call.tool)
        if rule is None and call.tool not in self.upstream:
            return await proceed(call)
        key = self.identify(call.ctx.raw_key)
        if key is None:
            return await proceed(call)  # the gate refuses it
        if rule is not None and (refused := self._judge(call.msg_id, rule, key, call.ctx)) is not None:
            return refused
        reply = await proceed(call)
        if call.tool in self.upstream and "credits" in call.notes:  # admitted and run: its outcome counts
            self._record(key.key_hash, call.tool, not jsonrpc.is_failure(reply))
        return reply

    def refuse(self, msg_id: Any, tool: str, params: dict[str, Any], ctx: CallContext) -> Message | None:
        """The check for calls that do not pass the call stages (batches, tasks): such calls are judged
        but, not being seen when they end, never count as an upstream tool's success."""
        rule = self.table.get(tool)
        key = self.identify(ctx.raw_key) if rule is not None else None
        return None if rule is None or key is None else self._judge(msg_id, rule, key, ctx)

    def _judge(self, msg_id: Any, rule: Dependency, key: KeyRecord, ctx: CallContext) -> Message | None:
        """Refuse (hard) or warn (soft) when an upstream tool has no recent success by this key."""
        missing = self._missing(key.key_hash, rule)
        if not missing:
            return None
        if rule.hard:
            self.refused[rule.tool] += 1
            data = {"tool": rule.tool, "missing": missing, "windowSeconds": rule.window_seconds}
            return denial_error(
                msg_id, "dependency_not_met", "call " + ", ".join(missing) + " successfully first", data
            )
        self.warned[rule.tool] += 1
        ctx.add_header(b"x-dependency-warning", ("missing: " + ", ".join(missing)).encode())
        return None

    def _missing(self, key_hash: str, rule: Dependency) -> list[str]:
        since = self.clock() - rule.window_seconds
        return [t for t in rule.depends_on if self._done.get((key_hash, t), 0.0) <= since]

    def _record(self, key_hash: str, tool: str, succeeded: bool) -> None:
        pair = (key_hash, tool)
        if not succeeded:
            self._done.pop(pair, None)
            return
        self._done[pair] = self.clock()
        self._done.move_to_end(pair)
        while len(self._done) > MAX_REMEMBERED:
            self._done.popitem(last=False)

    # --- admin ---------------------------------------------------------------------------------------
    def set(self, tool: str, depends_on: list[str], hard: bool, window_seconds: int, actor: str) -> list[str]:
        """Add or replace the rule for `tool`; the warnings say what was accepted but looks wrong."""
        upstream = tuple(dict.fromkeys(depends_on))
        if not upstream:
            raise Invalid("Invalid request: dependsOn must name at least one tool")
        if tool in upstream:
            raise Invalid("Invalid request: a tool cannot depend on itself")
        if len(upstream) > MAX_UPSTREAM:
            raise TooLarge(f"At most {MAX_UPSTREAM} tools in dependsOn")
        if tool not in self.table and len(self.table) >= MAX_RULES:
            raise TooLarge(f"At most {MAX_RULES} tool dependency rules")
        known = self.tool_names()
        warnings = []
        unknown = [t for t in (tool, *upstream) if t not in known]
        if unknown and known:
            raise Invalid(f"Invalid request: {unknown[0]!r} is not a tool the server lists")
        if unknown:
            warnings.append("the server's tool list is not known yet: the names are not checked")
        rule = Dependency(tool, upstream, hard, window_seconds, self.clock(), actor)
        table = {**self.table, tool: rule}
        try:
            _order(table)
        except CycleError as exc:
            cycle = " → ".join(str(t) for t in reversed(exc.args[1]))
            raise Conflict(f"This dependency would close a cycle ({cycle}): refused") from None
        self._save(table)
        self.events.publish("tool_deps.set", actor, tool=tool, dependsOn=list(upstream), hard=hard)
        return warnings

    def remove(self, tool: str, actor: str) -> Dependency:
        rule = self.table.get(tool)
        if rule is None:
            raise NotFound(f"No dependency rule for {tool!r}")
        self._save({k: v for k, v in self.table.items() if k != tool})
        self.events.publish("tool_deps.removed", actor, tool=tool)
        return rule

    def view(self) -> dict[str, Any]:
        rules = [r.view() for r in sorted(self.table.values(), key=lambda r: r.tool)]
        stats = {
            "refused": sum(self.refused.values()),
            "warned": sum(self.warned.values()),
            "remembered": len(self._done),
        }
        return {
            "dependencies": rules,
            "order": _order(self.table),
            "count": len(rules),
            "max": MAX_RULES,
            "stats": stats,
        }

    # --- persistence ---------------------------------------------------------------------------------
    def _save(self, table: dict[str, Dependency]) -> None:
        self.doc.write({t: r.stored() for t, r in table.items()})  # first: if the write fails nothing changed
        self._install(table)

    def _install(self, table: dict[str, Dependency]) -> None:
        self.table = table
        self.upstream = frozenset(t for r in table.values() for t in r.depends_on)
        self.traffic.switch(self, bool(table))

    def reload(self, _now: float = 0.0) -> None:
        """Read the stored rules again if they changed (start-up; a fleet peer's change, on a ticker)."""
        table = self.doc.read(_parse_table, "tool dependencies")
        if table is not None:
            self._install(table)


def _parse_table(stored: dict[str, Any]) -> dict[str, Dependency]:
    return {
        tool: Dependency(
            tool,
            tuple(str(t) for t in doc["dependsOn"]),
            bool(doc.get("hard", True)),
            int(doc["windowSeconds"]),
            float(doc.get("createdAt") or 0),
            str(doc.get("createdBy") or ""),
        )
        for tool, doc in stored.items()
    }


def _order(table: dict[str, Dependency]) -> list[str]:
    """Upstream tools first; raises CycleError when the rules form a cycle."""
    return list(TopologicalSorter({t: r.depends_on for t, r in table.items()}).static_order())


class DependencyCollector(Collector):
    """`paygate_tool_dependency_refusals_total{tool}` and `…_warnings_total{tool}` (tools with a rule, ≤ 500)."""

    def __init__(self, deps: ToolDependencies) -> None:
        self.deps = deps

    def collect(self) -> Iterable[Metric]:
        for name, counts, text in (
            ("paygate_tool_dependency_refusals", self.deps.refused, "calls refused: a hard dependency was not met"),
            ("paygate_tool_dependency_warnings", self.deps.warned, "calls let through with a soft dependency unmet"),
        ):
            family = CounterMetricFamily(name, text, labels=["tool"])
            for tool, count in sorted(counts.items()):
                family.add_metric([tool], count)
            yield family
