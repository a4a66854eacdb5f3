"""Dry runs: what the gate would say to a tool call, or to a batch of them, without charging or counting.

A single call is `BillingService.dry_run`: the very checks a real call meets (access, IP and country, ACL,
rate windows peeked, credits, spending limit, quotas, team), plus the step a real call meets before the
gate: the tool must be one the backend offers.

A batch runs the same single-call verdict for each call in order, against a copy of the key whose balance
and spend already include the earlier allowed calls of the batch (so credits and the spending limit are
checked in aggregate by the gate itself), and counts the earlier allowed calls against the remaining
slots of the rate windows, the key's quota and its team's budget and quota (copies of the counters,
advanced as real calls would advance them).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from paygate.billing.outcomes import GateVerdict
from paygate.billing.quota import team_subject, tenant_subject
from paygate.billing.service import BillingService
from paygate.core import gate
from paygate.core.records import KeyRecord
from paygate.reports.keys import window

UNKNOWN_TOOL = "unknown_tool"


@dataclass(frozen=True, slots=True)
class Call:
    tool: str
    arguments: dict[str, Any] | None = None


class DryRunner:
    def __init__(self, billing: BillingService, tool_known: Callable[[str], bool]) -> None:
        self.billing = billing
        self.tool_known = tool_known

    def input_bytes(self, call: Call) -> int:
        # Sized exactly as a real tools/call sizes its arguments (serialized only when size is priced).
        sized = call.arguments and self.billing.prices.for_tool(call.tool).credits_per_kb_input
        return len(orjson.dumps(call.arguments)) if sized else 0

    def verdict(self, key: KeyRecord, call: Call, client_ip: str | None, country: str | None) -> GateVerdict:
        if not self.tool_known(call.tool):
            return GateVerdict(False, UNKNOWN_TOOL, f"{call.tool} is not a tool the backend offers", 0, key.credits)
        return self.billing.dry_run(key, call.tool, self.input_bytes(call), client_ip, country)

    def one(self, key: KeyRecord, call: Call, client_ip: str | None, country: str | None) -> dict[str, Any]:
        v = self.verdict(key, call, client_ip, country)
        out = verdict_row(call.tool, v)
        out["creditsAvailable"] = v.credits_available
        now = time.time()
        out["rateLimit"] = window(
            self.billing.store, key.key_hash, self.billing.rate_limit_for(self.billing.policy_for(key)), now
        )
        tool_limit = self.billing.prices.for_tool(call.tool).rate_limit_per_min
        if tool_limit:
            out["toolRateLimit"] = window(self.billing.store, f"{key.key_hash}\x00{call.tool}", tool_limit, now)
        if v.allowed:
            out["creditsAfter"] = v.credits_available - v.credits_required
        if self.billing.shadow:
            out["shadowMode"] = True  # a real call would be forwarded (and not charged) whatever the verdict
        return out

    def batch(self, key: KeyRecord, calls: list[Call], client_ip: str | None, country: str | None) -> dict[str, Any]:
        now = time.time()
        global_left = self._slots(key.key_hash, self.billing.rate_limit_for(self.billing.policy_for(key)), now)
        used: dict[str, int] = {}  # rate-window subject -> allowed calls of this batch so far
        quotas = BatchQuotas(self.billing, key, now)
        spent = 0
        results = []
        for call in calls:
            view = dataclasses.replace(
                key, credits=key.credits - spent, total_spent=key.total_spent + spent, extra=dict(key.extra)
            )
            v = self.verdict(view, call, client_ip, country)
            if v.allowed:
                v = self._batch_windows(key, call.tool, v, used, global_left, now)
            if v.allowed:
                v = quotas.check(v)
            if v.allowed:
                spent += v.credits_required
                quotas.count(v.credits_required)
            results.append(verdict_row(call.tool, v))
        required = sum(r["creditsRequired"] for r in results)
        return {
            "allAllowed": all(r["allowed"] for r in results),
            "totalCreditsRequired": required,
            "creditsAvailable": key.credits,
            "creditsAfter": key.credits - spent,
            "results": results,
        }

    def _slots(self, subject: str, limit: int, now: float) -> int | None:
        return self.billing.store.rate_peek(subject, limit, now).remaining if limit else None

    def _batch_windows(
        self, key: KeyRecord, tool: str, v: GateVerdict, used: dict[str, int], global_left: int | None, now: float
    ) -> GateVerdict:
        """The earlier allowed calls of the batch take rate-window slots too."""
        tool_limit = self.billing.prices.for_tool(tool).rate_limit_per_min
        tool_subject = f"{key.key_hash}\x00{tool}"
        if global_left is not None and used.get(key.key_hash, 0) >= global_left:
            return dataclasses.replace(
                v, allowed=False, reason="rate_limited", detail="the batch uses up the key's rate window"
            )
        tool_left = self._slots(tool_subject, tool_limit, now)
        if tool_left is not None and used.get(tool_subject, 0) >= tool_left:
            return dataclasses.replace(
                v, allowed=False, reason="tool_rate_limited", detail=f"{tool}: the batch uses up the tool's rate window"
            )
        used[key.key_hash] = used.get(key.key_hash, 0) + 1
        used[tool_subject] = used.get(tool_subject, 0) + 1
        return v


class BatchQuotas:
    """The key's quota counters, its tenant's and its team's budget and quota counters, copied at the start of a batch
    and advanced by each allowed call, so a later call of the batch meets the limits as a real call would
    (the single-call verdict reads the live counters, which a dry run never advances). The limits are
    judged by the gate's own checks."""

    def __init__(self, billing: BillingService, key: KeyRecord, now: float) -> None:
        policy = billing.policy_for(key)
        team = billing.facts.team_of(key)
        in_team = team is not None and key.team_id is not None
        tenant = billing.facts.tenant_of(key)
        self.input = gate.GateInput(
            key,
            True,
            "",
            0,
            now,
            policy,
            quota_used=billing.quotas.snapshot(key.key_hash, now) if policy.quota is not None else None,
            team=team,
            team_used=billing.quotas.snapshot(team_subject(str(key.team_id)), now) if in_team else None,
            team_spent=billing.quotas.team_spent(str(key.team_id)) if in_team else 0,
            tenant=tenant,
            tenant_used=billing.quotas.snapshot(tenant_subject(str(tenant["id"])), now) if tenant else None,
        )

    def check(self, v: GateVerdict) -> GateVerdict:
        g = dataclasses.replace(self.input, price=v.credits_required)
        denial = gate.check_quota(g) or gate.check_tenant_quota(g) or gate.check_team(g)
        if denial is None:
            return v
        return dataclasses.replace(v, allowed=False, reason=denial.reason, detail=denial.detail)

    def count(self, credits: int) -> None:
        """One more allowed call, counted as `QuotaBook.add` counts a real one."""
        for counter in (self.input.quota_used, self.input.team_used, self.input.tenant_used):
            if counter is not None:
                counter.day_calls += 1
                counter.month_calls += 1
                counter.day_credits += credits
                counter.month_credits += credits
        if self.input.team is not None:
            self.input = dataclasses.replace(self.input, team_spent=self.input.team_spent + credits)


def verdict_row(tool: str, v: GateVerdict) -> dict[str, Any]:
    out: dict[str, Any] = {"tool": tool, "allowed": v.allowed, "creditsRequired": v.credits_required}
    if not v.allowed:
        out["reason"] = f"{v.reason}: {v.detail}" if v.detail else v.reason  # the reference's "reason: detail"
        out["denyReason"] = v.reason
    return out
