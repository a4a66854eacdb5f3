"""The circuit breaker control (docs/traffic.md, "Circuit breaker"): one `Breaker` (breaker.py) per
backend — per server prefix behind `servers`, else one for the backend — or per tool with
`circuitBreakerPerTool`.

Two stages apply it. `RefuseWhileOpen` (a call stage) answers `-32003` while a breaker is open, before
the gate, so a refused call is never charged. `RecordOutcomes` (a send stage, outside the retries) counts
each forwarded call's final outcome: a failure is a timeout, an unavailable backend, or a JSON-RPC error
answer other than the caller's own mistakes; a tool's `isError: true` result is the tool's answer and
counts as a success. Calls that go around the call stages (`tools/call_batch`, tasks, x402) are refused
by the send stage instead, as undelivered, so their charge is refunded whatever the refund policy.

Threshold, cooldown and per-tool are adjustable at runtime (`POST /admin/circuit`), kept in the store
and re-read by a ticker, so a fleet's instances follow one another; each instance's breaker states are
its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from paygate.core import errors
from paygate.core.domain_errors import NotFound
from paygate.events.hub import EventHub
from paygate.mcp import jsonrpc
from paygate.mcp.backends.base import BackendError, BackendUnavailable
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.traffic.breaker import Breaker, State
from paygate.traffic.chain import Proceed, Send, ToolCall, Upstream

KIND = "traffic.circuit"  # the admin-set settings, one document
DOC_ID = "settings"
DEFAULT_COOLDOWN = 30.0
BACKEND = "backend"  # the one breaker's label without `servers`
# A JSON-RPC error that says the caller asked wrongly, not that the server is failing.
CALLER_ERRORS = frozenset(
    {errors.INVALID_REQUEST, errors.METHOD_NOT_FOUND, errors.INVALID_PARAMS, errors.REQUEST_CANCELLED}
)
STATE_VALUE: dict[State, int] = {"closed": 0, "open": 1, "half_open": 2}

# The breaker the call stage let this call through (the send stage records on it, and does not ask again).
_admitted: ContextVar[Breaker | None] = ContextVar("paygate_circuit_admitted", default=None)


@dataclass(slots=True)
class CircuitSettings:
    threshold: int = 0  # 0 = off
    cooldown: float = DEFAULT_COOLDOWN
    per_tool: bool = False

    def doc(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "cooldownSeconds": self.cooldown, "perTool": self.per_tool}


class CircuitBreakers:
    """Every breaker, the settings they share, and the two stages."""

    def __init__(
        self,
        settings: CircuitSettings,
        store: Store,
        events: EventHub,
        prefixes: frozenset[str] | None,
        known_tool: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.events = events
        self.prefixes = prefixes  # the servers' prefixes (multi-server), else None
        self.known_tool = known_tool  # per-tool breakers only for tools the backend lists (labels stay bounded)
        self.clock = clock
        self.breakers: dict[str, Breaker] = {}
        self.on_switch: list[Callable[[], None]] = []  # the chains are rebuilt when it goes on or off
        self.refuse = RefuseWhileOpen(self)
        self.record = RecordOutcomes(self)
        self._switch()

    @property
    def enabled(self) -> bool:
        return self.settings.threshold > 0

    # which breaker ------------------------------------------------------------
    def label_for(self, tool: str | None) -> str | None:
        """The breaker a call to `tool` goes through; None: none (an unknown server prefix or tool, which
        the gate refuses anyway)."""
        if tool is None:
            return None
        if self.settings.per_tool:
            return tool if self.known_tool(tool) else None
        if self.prefixes is None:
            return BACKEND
        prefix = tool.partition(":")[0]
        return prefix if prefix in self.prefixes else None

    def breaker(self, label: str) -> Breaker:
        found = self.breakers.get(label)
        if found is None:
            found = self.breakers[label] = Breaker(self.settings.threshold, self.settings.cooldown, self.clock)
        return found

    # outcomes -----------------------------------------------------------------
    def outcome(self, label: str, breaker: Breaker, ok: bool) -> None:
        moved = breaker.record(ok)
        if moved is not None:
            before, after = moved
            data: dict[str, Any] = {"breaker": label, "from": before, "failures": breaker.failures}
            if after == "open":
                data["cooldownSeconds"] = breaker.cooldown
            self.events.emit(f"circuit.{'opened' if after == 'open' else 'closed'}", "system", data)

    def refusal_data(self, label: str, breaker: Breaker) -> dict[str, Any]:
        return {
            "reason": "circuit_breaker_open",
            "breaker": label,
            "retryAfterSeconds": max(round(breaker.retry_after(), 3), 0.0),
        }

    # administration -----------------------------------------------------------
    def load(self) -> None:
        """The admin-set settings from the store (at start, and from a fleet peer's change)."""
        doc = self.store.doc_get(KIND, DOC_ID)
        if doc is None:
            return
        wanted = CircuitSettings(int(doc["threshold"]), float(doc["cooldownSeconds"]), bool(doc["perTool"]))
        if wanted != self.settings:
            self._apply(wanted)

    def update(
        self, threshold: int | None, cooldown: float | None, per_tool: bool | None, label: str | None, actor: str
    ) -> dict[str, Any]:
        """Reset one breaker (`label`) or all to closed; with new settings, apply and keep them."""
        if label is not None and label not in self.breakers:
            raise NotFound(f"No circuit breaker {label!r}")
        s = self.settings
        wanted = CircuitSettings(
            s.threshold if threshold is None else threshold,
            s.cooldown if cooldown is None else cooldown,
            s.per_tool if per_tool is None else per_tool,
        )
        changed = wanted != s
        if changed:
            self.store.doc_put(KIND, DOC_ID, {**wanted.doc(), "updatedAt": time.time()})
            self._apply(wanted)
        for name, breaker in self.breakers.items():
            if label is None or name == label:
                breaker.reset()
        data: dict[str, Any] = {"reset": label or "all", **wanted.doc()}
        self.events.emit("circuit.updated" if changed else "circuit.reset", actor, data)
        return self.view()

    def _apply(self, wanted: CircuitSettings) -> None:
        if wanted.per_tool != self.settings.per_tool:
            self.breakers.clear()  # other labels: start afresh
        self.settings = wanted
        for breaker in self.breakers.values():
            breaker.threshold, breaker.cooldown = wanted.threshold, wanted.cooldown
        self._switch()

    def _switch(self) -> None:
        self.refuse.enabled = self.record.enabled = self.enabled
        for hook in self.on_switch:
            hook()

    @staticmethod
    def state_value(breaker: Breaker) -> int:
        """A breaker's state as the gauge shows it: 0 closed, 1 open, 2 half-open."""
        return STATE_VALUE[breaker.state]

    def view(self) -> dict[str, Any]:
        breakers = {label: b.snapshot() for label, b in sorted(self.breakers.items())}
        states = {b["state"] for b in breakers.values()}
        worst = "open" if "open" in states else "half_open" if "half_open" in states else "closed"
        return {
            "enabled": self.enabled,
            **self.settings.doc(),
            "scope": "tool" if self.settings.per_tool else "server" if self.prefixes is not None else "backend",
            "state": worst,
            "failures": sum(b["failures"] for b in breakers.values()),
            "rejections": sum(b["rejections"] for b in breakers.values()),
            "breakers": breakers,
        }


class RefuseWhileOpen:
    """The call stage: `-32003` before any charge while the call's breaker is open."""

    name = "circuit"

    def __init__(self, circuits: CircuitBreakers) -> None:
        self.circuits = circuits
        self.enabled = False

    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        circuits = self.circuits
        label = circuits.label_for(call.tool)
        if label is None:
            return await proceed(call)
        breaker = circuits.breaker(label)
        if not breaker.allow():
            call.ctx.add_header(b"retry-after", str(max(math.ceil(breaker.retry_after()), 1)).encode())
            return jsonrpc.error(
                call.msg_id,
                errors.BACKEND_UNAVAILABLE,
                f"Circuit breaker open for {label}: the backend is failing; try again later",
                circuits.refusal_data(label, breaker),
            )
        probe = breaker.probe_out  # this call is the one probe (nothing awaited since allow)
        token = _admitted.set(breaker)
        try:
            return await proceed(call)
        finally:
            _admitted.reset(token)
            if probe:
                breaker.release_probe()  # a probe the gate refused (or the client cancelled) recorded nothing


class RecordOutcomes:
    """The send stage: each forwarded call's outcome (after its retries) counted on its breaker."""

    name = "circuit"

    def __init__(self, circuits: CircuitBreakers) -> None:
        self.circuits = circuits
        self.enabled = False

    async def around(self, request: Upstream, send: Send) -> Message:
        circuits = self.circuits
        breaker = _admitted.get()
        label = circuits.label_for(request.tool)
        if label is None:
            return await send(request)
        probe = False
        if breaker is None:  # around the call stages (a batch, a task, x402): not asked yet
            breaker = circuits.breaker(label)
            if not breaker.allow():
                raise BackendUnavailable(f"circuit breaker open for {label}", delivered=False)
            probe = breaker.probe_out
        try:
            reply = await send(request)
        except BackendError:
            circuits.outcome(label, breaker, False)
            raise
        finally:
            if probe:
                breaker.release_probe()  # cancelled: no outcome (after one, it is no longer half-open)
        error = reply.get("error")
        ok = error is None or (isinstance(error, dict) and error.get("code") in CALLER_ERRORS)
        circuits.outcome(label, breaker, ok)
        return reply
