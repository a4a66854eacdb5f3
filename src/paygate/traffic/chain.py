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


class SendStage(Protocol):
    name: str
    enabled: bool

    async def around(self, request: Upstream, send: Send) -> Message: ...


class Traffic:
    """The registered controls, outermost first, and the chains of those switched on."""

    def __init__(self) -> None:
        self._call_stages: list[CallStage] = []
        self._send_stages: list[SendStage] = []
        self.calls_on: tuple[CallStage, ...] = ()  # read by the dispatcher on every call: empty = all off
        self.sends_on: tuple[SendStage, ...] = ()
        self.tool_timeouts: dict[str, float] = {}  # seconds, from toolPricing[t].timeoutMs (else the global one)

    def add_call_stage(self, stage: CallStage) -> None:
        self._call_stages.append(stage)
        self.refresh()

    def add_send_stage(self, stage: SendStage) -> None:
        self._send_stages.append(stage)
        self.refresh()

    def refresh(self) -> None:
        """After a control is switched on or off (config, admin endpoint, a fleet peer's change)."""
        self.calls_on = tuple(s for s in self._call_stages if s.enabled)
        self.sends_on = tuple(s for s in self._send_stages if s.enabled)

    def stage(self, name: str) -> CallStage | SendStage | None:
        stages: list[CallStage | SendStage] = [*self._call_stages, *self._send_stages]
        return next((s for s in stages if s.name == name), None)

    async def run_call(self, call: ToolCall, innermost: Proceed) -> Message:
        return await _chain(self.calls_on, innermost)(call)

    async def send(self, request: Upstream, innermost: Send) -> Message:
        return await _chain(self.sends_on, innermost)(request)


Step = Callable[[Any], Awaitable[Message]]


def _chain(stages: tuple[Any, ...], innermost: Step) -> Step:
    """`stages[0]` outermost: each stage's `proceed` is the rest of the chain."""
    step = innermost
    for stage in reversed(stages):
        step = _bind(stage, step)
    return step


def _bind(stage: Any, proceed: Step) -> Step:
    async def run(item: Any) -> Message:
        return await stage.around(item, proceed)  # type: ignore[no-any-return]

    return run
