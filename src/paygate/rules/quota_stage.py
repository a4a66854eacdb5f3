"""The quota rules' call stage: the response headers of a plain tools/call, once the gate has decided.

The gate itself (core/gate.check_quota_rules) refuses or admits; this stage only tells the client. An admitted
call past a rule's limit gets `X-Quota-Warning` (the rule, the count, the limit and the hard cap); a call
refused by a `throttle` rule gets `Retry-After` and `error.data.retryAfterSeconds` (the seconds until the
rule's period rolls over). Switched on only while a rule exists. Calls that do not pass the call stages
(batches, tasks, x402) are counted and refused alike, without these headers.
"""

from __future__ import annotations

import time

from paygate.core import quota_rules as qr
from paygate.mcp.jsonrpc import Message
from paygate.rules.quota_rules import QuotaRules
from paygate.traffic.chain import Proceed, ToolCall


class QuotaRuleStage:
    name = "quota_rules"

    def __init__(self, rules: QuotaRules) -> None:
        self.rules = rules
        self.enabled = rules.enabled

    def follow(self) -> None:
        """The rules changed: the stage is in the chain exactly while a rule exists."""
        self.enabled = self.rules.enabled

    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        reply = await proceed(call)
        key = call.ctx.key
        if key is None:
            return reply
        now = time.time()
        if "credits" in call.notes:  # admitted and settled
            over = self.rules.over(key.key_hash, call.tool, now)
            if over:
                self.rules.warnings += 1
                call.ctx.add_header(b"x-quota-warning", ", ".join(over).encode())
            return reply
        error = reply.get("error")
        data = error.get("data") if isinstance(error, dict) else None
        if isinstance(data, dict) and data.get("reason") == qr.REASON:
            price = data.get("creditsRequired")
            hit = self.rules.refusing(key.key_hash, call.tool, price if type(price) is int else 0, now)
            if hit is not None and hit[0].action == "throttle":
                data["retryAfterSeconds"] = hit[1]
                call.ctx.add_header(b"retry-after", str(hit[1]).encode())
        return reply
