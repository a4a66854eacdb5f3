"""The seam between the dispatcher and the traffic controls.

A gated `tools/call` passes through two chains of stages, each stage a control:

* **call stages** wrap the whole call: the gate, its charge, the forward and the settlement. A stage
  may answer in the call's place *before any charge* (an open breaker, a concurrency limit, a cached
  or deduplicated answer), rename the tool (aliases), or look at the settled answer (store it in the
  cache, count a success). The innermost `proceed` is the dispatcher's own gated call.
* **send stages** wrap one request to a backend inside the forward (timeouts, retries, canary, the
  breaker's bookkeeping, the mirror). A retry here is not charged again: the charge is outside.

Stages are registered once by the composition root (compose/traffic.py) in a fixed order and switch
themselves on and off (`enabled`); `Traffic.refresh()` rebuilds the chains of enabled stages, so with
every control off the dispatcher's hot path pays one truthiness test per call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from paygate.mcp.jsonrpc import Message

if TYPE_CHECKING:
    from paygate.mcp.call_context import CallContext


@dataclass(slots=True)
class ToolCall:
    """One gated tools/call as the call stages see it. A stage that renames the tool replaces `tool`
    and `params` (a new dict: the client's is never mutated)."""

    msg_id: Any
    tool: str
    params: dict[str, Any]
    ctx: CallContext
    notes: dict[str, Any] = field(default_factory=dict)  # what one stage leaves for a later one


@dataclass(slots=True)
class Upstream:
    """One request to a backend as the send stages see it; `timeout` is in seconds (the tool's own
    `toolPricing[t].timeoutMs`, else the global one)."""

    method: str
    params: Any
    timeout: float
    tool: str | None  # for tools/call; None for other forwarded methods
    ctx: CallContext


Proceed = Callable[[ToolCall], Awaitable[Message]]
Send = Callable[[Upstream], Awaitable[Message]]


class CallStage(Protocol):
    name: str
    enabled: bool

    async def around(self, call: ToolCall, proceed: Proceed) -> Message: ...


class CallCheck(Protocol):
    """A control that may refuse a call before any charge, and nothing else. Checks also run where the
    call stages do not: each call of a `tools/call_batch`, a task-augmented call, an x402-paid call."""

    name: str
    enabled: bool

    def refuse(self, msg_id: Any, tool: str, params: dict[str, Any], ctx: CallContext) -> Message | None: ...


class SendStage(Protocol):
    name: str
    enabled: bool

    async def around(self, request: Upstream, send: Send) -> Message: ...


class Traffic:
    """The registered controls, outermost first, and the chains of those switched on."""

    def __init__(self, innermost_call: Proceed | None = None, innermost_send: Send | None = None) -> None:
        # the dispatcher's gated call and its request upstream: what the chains end in
        self._innermost_call = innermost_call or _not_wired
        self._innermost_send = innermost_send or _not_wired
        self._call_stages: list[CallStage] = []
        self._send_stages: list[SendStage] = []
        self._checks: list[CallCheck] = []
        self.checks_on: tuple[CallCheck, ...] = ()  # read on the paths around the call stages: empty = none
        self.calls_on: tuple[CallStage, ...] = ()  # read by the dispatcher on every call: empty = all off
        self.sends_on: tuple[SendStage, ...] = ()
        self.tool_timeouts: dict[str, float] = {}  # seconds, from toolPricing[t].timeoutMs (else the global one)
        self._call_chain: Step = self._innermost_call
        self._send_chain: Step = self._innermost_send

    def add_call_stage(self, stage: CallStage, outermost: bool = False) -> None:
        if outermost:  # tracing: it must see the whole call, whoever registered before it
            self._call_stages.insert(0, stage)
        else:
            self._call_stages.append(stage)
        self.refresh()

    def add_send_stage(self, stage: SendStage) -> None:
        self._send_stages.append(stage)
        self.refresh()

    def add_check(self, check: CallCheck) -> None:
        self._checks.append(check)
        self.refresh()

    def switch(self, stage: CallStage | SendStage | CallCheck, on: bool) -> None:
        """A control turns itself on or off: the chains are rebuilt only when that changes something."""
        if stage.enabled != on:
            stage.enabled = on
            self.refresh()

    def refresh(self) -> None:
        """After a control is switched on or off (config, admin endpoint, a fleet peer's change)."""
        self.checks_on = tuple(c for c in self._checks if c.enabled)
        self.calls_on = tuple(s for s in self._call_stages if s.enabled)
        self.sends_on = tuple(s for s in self._send_stages if s.enabled)
        # Built here, not per call: a chain built per call cost ~50 µs a call in allocations and the
        # collections they caused (bench/README.md, "Traffic control").
        self._call_chain = _chain(self.calls_on, self._innermost_call)
        self._send_chain = _chain(self.sends_on, self._innermost_send)

    def stage(self, name: str) -> CallStage | SendStage | None:
        stages: list[CallStage | SendStage] = [*self._call_stages, *self._send_stages]
        return next((s for s in stages if s.name == name), None)

    def run_call(self, call: ToolCall) -> Awaitable[Message]:
        """The call through the call stages switched on, into the dispatcher's gated call."""
        return self._call_chain(call)

    def precheck(self, msg_id: Any, tool: str, params: dict[str, Any], ctx: CallContext) -> Message | None:
        """The first refusal of the checks switched on, for a call that does not pass the call stages."""
        for check in self.checks_on:
            refused = check.refuse(msg_id, tool, params, ctx)
            if refused is not None:
                return refused
        return None

    def send(self, request: Upstream) -> Awaitable[Message]:
        """The request through the send stages switched on, to the backend."""
        return self._send_chain(request)


Step = Callable[[Any], Awaitable[Message]]


def _chain(stages: tuple[Any, ...], innermost: Step) -> Step:
    """`stages[0]` outermost: each stage's `proceed` is the rest of the chain."""
    step = innermost
    for stage in reversed(stages):
        step = _bind(stage, step)
    return step


def _bind(stage: Any, proceed: Step) -> Step:
    """The stage with the rest of the chain bound: calling it returns the stage's own coroutine (no
    wrapper coroutine per stage per call)."""
    return lambda item: stage.around(item, proceed)


async def _not_wired(item: Any) -> Message:
    raise RuntimeError("this Traffic was built without the dispatcher's innermost steps")
