"""The gate's events: one `gate.allow` per settled call, one `gate.deny` per refusal, and `key.expired` the
first time an expired key is refused. Published once the outcome is known; subscribers run after the
call's answer is on its way (events/hub.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from paygate.billing.facts import ClientFacts
from paygate.billing.outcomes import Admitted, Refused, Settlement
from paygate.core.gate import Denial
from paygate.core.values import iso_time
from paygate.events.hub import EventHub
from paygate.mcp.call_context import CallContext


class GateEvents:
    def __init__(self, events: EventHub) -> None:
        self.events = events
        self.deny_watch: Callable[[ClientFacts, str], None] | None = None  # (client, reason) of each refusal
        self._expired_seen: set[str] = set()  # keys whose key.expired event was published

    def allowed(
        self, admitted: Admitted, settlement: Settlement, failed: bool, ctx: CallContext, started: float
    ) -> int:
        """Publish a settled call's `gate.allow`; the credits it cost in the end (net of refund and surcharge)."""
        key = admitted.key
        credits = admitted.charged - settlement.refunded + settlement.surcharge
        data: dict[str, Any] = {
            "tool": admitted.tool,
            "keyMasked": key.masked if key else None,
            "credits": credits,
            "durationMs": round((time.perf_counter() - started) * 1000, 3),
            "requestId": ctx.request_id,
            "failed": failed,
        }
        if settlement.refunded:
            data["refunded"] = settlement.refunded
        if admitted.shadow_reason is not None:
            data["shadow"] = admitted.shadow_reason
        self.events.emit(
            "gate.allow",
            key.masked if key else "anonymous",
            data,
            request_id=ctx.request_id,
            key_hash=key.key_hash if key else None,
        )
        return credits

    def store_refused(self, admitted: Admitted, ctx: CallContext, started: float, reason: str) -> None:
        """A call the gate admitted and the shared store then refused (another instance got there first):
        its `gate.deny`, as if the gate had refused it."""
        denial = Denial(reason, "refused by the shared store")
        refused = Refused(denial, admitted.key, admitted.tool, admitted.price, admitted.charged, admitted.rate)
        self.denied(refused, ctx, started)

    def denied(self, refused: Refused, ctx: CallContext, started: float) -> None:
        key = refused.key
        if self.deny_watch is not None:  # the global IP rules count bad credentials (policy/ip_access.py)
            self.deny_watch(ctx.client, refused.denial.reason)
        if refused.denial.reason == "api_key_expired" and key is not None and key.key_hash not in self._expired_seen:
            # The reference fires key.expired from the gate: once per key (per process), not per call.
            self._expired_seen.add(key.key_hash)
            self.events.emit(
                "key.expired",
                "system",
                {"keyMasked": key.masked, "name": key.name, "expiresAt": iso_time(key.expires_at)},
                key_hash=key.key_hash,
            )
        self.events.emit(
            "gate.deny",
            key.masked if key else "anonymous",
            {
                "tool": refused.tool,
                "keyMasked": key.masked if key else None,
                "reason": refused.denial.reason,
                "creditsRequired": refused.required,
                "durationMs": round((time.perf_counter() - started) * 1000, 3),
                "requestId": ctx.request_id,
            },
            request_id=ctx.request_id,
            key_hash=key.key_hash if key else None,
        )
