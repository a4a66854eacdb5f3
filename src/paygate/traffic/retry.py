"""The retry policy (docs/traffic.md, "Retry policy"): a send stage that sends a failed tools/call again,
with exponential backoff and full jitter, inside the call's own timeout.

What is retried, and only that:
* a request that certainly never reached the server (`BackendUnavailable`, `delivered=False`), for any
  tool: nothing ran, so sending it again cannot run it twice;
* for a tool listed in `idempotentTools` only: a request that may have reached it (an unavailable
  backend mid-call) and the JSON-RPC error codes listed in `retryOn.errorCodes`.
A timeout is never retried (the call's time is spent), nor a tool's `isError: true` answer.

The charge is taken outside the send chain, once per logical call, so retries are never charged; the
breaker's stage is outside this one and counts the final outcome only. Retries are capped by the retry
budget: at most `retryBudgetPercent` of the calls seen in the last minute (and a few regardless, so a
quiet gateway can still retry). Off by default; `GET/POST /admin/retry-policy` shows and changes it,
kept in the store.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from paygate.core.domain_errors import Invalid
from paygate.events.hub import EventHub
from paygate.mcp.backends.base import BackendUnavailable
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.traffic.chain import Send, Upstream

KIND = "traffic.retry"
DOC_ID = "policy"
BUDGET_WINDOW = 60.0  # seconds the retry budget looks back (two half-windows)
BUDGET_GRACE = 3  # retries per window allowed whatever the share (a quiet gateway's first failures)
MAX_TOOL_STATS = 1000  # tools with stats kept (their names come from admitted calls: known tools)


@dataclass(slots=True)
class RetryPolicy:
    enabled: bool = False
    max_retries: int = 2
    base_backoff_ms: int = 100
    max_backoff_ms: int = 2000
    retry_on_transport: bool = True
    retry_on_codes: frozenset[int] = frozenset()
    idempotent_tools: frozenset[str] = frozenset()
    retry_budget_percent: float = 20.0

    def doc(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "maxRetries": self.max_retries,
            "baseBackoffMs": self.base_backoff_ms,
            "maxBackoffMs": self.max_backoff_ms,
            "retryOn": {"transport": self.retry_on_transport, "errorCodes": sorted(self.retry_on_codes)},
            "idempotentTools": sorted(self.idempotent_tools),
            "retryBudgetPercent": self.retry_budget_percent,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RetryPolicy:
        retry_on = doc.get("retryOn") or {}
        return cls(
            enabled=bool(doc["enabled"]),
            max_retries=int(doc["maxRetries"]),
            base_backoff_ms=int(doc["baseBackoffMs"]),
            max_backoff_ms=int(doc["maxBackoffMs"]),
            retry_on_transport=bool(retry_on.get("transport", True)),
            retry_on_codes=frozenset(int(c) for c in retry_on.get("errorCodes") or ()),
            idempotent_tools=frozenset(str(t) for t in doc.get("idempotentTools") or ()),
            retry_budget_percent=float(doc["retryBudgetPercent"]),
        )


@dataclass(slots=True)
class ToolStats:
    calls: int = 0  # logical calls through the stage
    attempts: int = 0  # requests sent (calls + retries)
    retries: int = 0
    succeeded_after_retry: int = 0
    gave_up: int = 0  # failed in a retryable way, but the retries (or the budget, or the time) ran out

    def view(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "attempts": self.attempts,
            "retries": self.retries,
            "succeededAfterRetry": self.succeeded_after_retry,
            "gaveUp": self.gave_up,
        }


@dataclass(slots=True)
class Budget:
    """Calls and retries in the previous and the current half-window: a retry may go out while the
    retries in both stay under `percent` of the calls in both (or under BUDGET_GRACE)."""

    percent: float
    clock: Callable[[], float]
    started: float = float("-inf")
    calls: tuple[int, int] = (0, 0)  # (previous half-window, current)
    retries: tuple[int, int] = (0, 0)
    refused: int = 0

    def _roll(self) -> None:
        now = self.clock()
        elapsed = now - self.started
        if elapsed >= BUDGET_WINDOW / 2:
            recent = elapsed < BUDGET_WINDOW
            self.calls = (self.calls[1] if recent else 0, 0)
            self.retries = (self.retries[1] if recent else 0, 0)
            self.started = now

    def call(self) -> None:
        self._roll()
        self.calls = (self.calls[0], self.calls[1] + 1)

    def take(self) -> bool:
        """May one more retry go out now? (Counted when it may.)"""
        self._roll()
        allowed = max(BUDGET_GRACE, int(sum(self.calls) * self.percent / 100))
        if sum(self.retries) >= allowed:
            self.refused += 1
            return False
        self.retries = (self.retries[0], self.retries[1] + 1)
        return True


class Retries:
    """The policy, its stats, and the send stage (`name`, `enabled`, `around`)."""

    name = "retry"

    def __init__(
        self,
        policy: RetryPolicy,
        store: Store,
        events: EventHub,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.policy = policy
        self.store = store
        self.events = events
        self.clock = clock
        self.jitter = jitter
        self.sleep: Callable[[float], Any] = asyncio.sleep
        self.budget = Budget(policy.retry_budget_percent, clock)
        self.stats: dict[str, ToolStats] = {}
        self.retried = 0  # retries sent, in all (the metric)
        self.on_switch: list[Callable[[], None]] = []
        self.enabled = self._on()

    def _on(self) -> bool:
        return self.policy.enabled and self.policy.max_retries > 0

    # the stage ---------------------------------------------------------------
    async def around(self, request: Upstream, send: Send) -> Message:
        tool = request.tool
        if tool is None:
            return await send(request)
        policy = self.policy
        stats = self._stats(tool)
        stats.calls += 1
        self.budget.call()
        idempotent = tool in policy.idempotent_tools
        deadline = self.clock() + request.timeout
        attempt = 0
        reached = False  # an attempt may have reached the server (then so may the call have)
        while True:
            stats.attempts += 1
            failure: BackendUnavailable | None = None
            try:
                reply = await send(request)
            except BackendUnavailable as exc:
                failure, reply = exc, {}
                reached = reached or exc.delivered
                retryable = policy.retry_on_transport and (idempotent or not exc.delivered)
            else:
                reached = True
                error = reply.get("error")
                if error is None:
                    stats.succeeded_after_retry += attempt > 0
                    return reply
                retryable = idempotent and isinstance(error, dict) and error.get("code") in policy.retry_on_codes
            if not retryable:
                break
            # back off (full jitter), within what is left of the call's time, and within the budget
            pause = self.jitter(0.0, min(policy.max_backoff_ms, policy.base_backoff_ms * 2**attempt)) / 1000
            left = deadline - self.clock() - pause
            if attempt >= policy.max_retries or left <= 0 or not self.budget.take():
                stats.gave_up += 1
                break
            if pause > 0:
                await self.sleep(pause)
            attempt += 1
            stats.retries += 1
            self.retried += 1
            request = replace(request, timeout=left)
        if failure is not None:
            if reached and not failure.delivered:  # the last attempt did not arrive, an earlier one may have
                raise BackendUnavailable(str(failure), delivered=True) from failure
            raise failure
        return reply

    def _stats(self, tool: str) -> ToolStats:
        stats = self.stats.get(tool)
        if stats is None:
            if len(self.stats) >= MAX_TOOL_STATS:
                self.stats.pop(next(iter(self.stats)))
            stats = self.stats[tool] = ToolStats()
        return stats

    # administration ------------------------------------------------------------
    def _apply(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.budget.percent = policy.retry_budget_percent
        on = self._on()
        if on != self.enabled:
            self.enabled = on
            for hook in self.on_switch:
                hook()

    def load(self) -> None:
        """The admin-set policy from the store (at start, and from a fleet peer's change)."""
        doc = self.store.doc_get(KIND, DOC_ID)
        if doc is not None:
            policy = RetryPolicy.from_doc(doc)
            if policy != self.policy:
                self._apply(policy)

    def update(self, changes: dict[str, Any], actor: str) -> dict[str, Any]:
        """A partial change (camelCase fields, already validated one by one; checked as a whole here),
        applied at once, kept, audited as `retry_policy.updated`."""
        merged = {**self.policy.doc(), **changes}
        if "retryOn" in changes:
            merged["retryOn"] = {**self.policy.doc()["retryOn"], **changes["retryOn"]}
        policy = RetryPolicy.from_doc(merged)
        if policy.max_backoff_ms < policy.base_backoff_ms:
            raise Invalid("maxBackoffMs must be at least baseBackoffMs")
        self.store.doc_put(KIND, DOC_ID, {**policy.doc(), "updatedAt": time.time()})
        self._apply(policy)
        self.events.emit("retry_policy.updated", actor, {"changed": sorted(changes), "enabled": policy.enabled})
        return self.view()

    def view(self) -> dict[str, Any]:
        return {
            **self.policy.doc(),
            "active": self.enabled,
            "retries": self.retried,
            "budgetRefused": self.budget.refused,
            "tools": {tool: s.view() for tool, s in sorted(self.stats.items())},
        }
