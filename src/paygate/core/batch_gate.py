"""The money checks for a batch of tool calls (`tools/call_batch`), pure.

A batch is admitted whole or not at all, so its funds are checked in aggregate: the credits, the
spending limit, the quotas and the team's budget and quota must all cover every call together. Call
`i` is checked as if calls `0 … i-1` had already been charged; prices are never negative, so every
call passes that way exactly when the whole batch does, and the first that fails is the call that
tips the batch over — the one the error names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from paygate.core import gate
from paygate.core.quota import Counter
from paygate.core.quota_rules import QuotaRule


def after(counter: Counter | None, calls: int, credits: int) -> Counter | None:
    """A quota counter as it would stand after `calls` more calls costing `credits` in all."""
    if counter is None or not (calls or credits):
        return counter
    return dataclasses.replace(
        counter,
        day_calls=counter.day_calls + calls,
        month_calls=counter.month_calls + calls,
        day_credits=counter.day_credits + credits,
        month_credits=counter.month_credits + credits,
    )


def rules_after(g: gate.GateInput, earlier: Sequence[gate.GateInput]) -> list[tuple[QuotaRule, int]] | None:
    """`g`'s quota-rule counts once the earlier calls of the batch that each rule applies to were counted."""
    if g.quota_rules is None or g.key is None or not earlier:
        return g.quota_rules
    key_hash = g.key.key_hash
    return [
        (rule, used + sum(1 if rule.metric == "calls" else e.price for e in earlier if rule.applies(key_hash, e.tool)))
        for rule, used in g.quota_rules
    ]


def projected(g: gate.GateInput, calls: int, credits: int, earlier: Sequence[gate.GateInput] = ()) -> gate.GateInput:
    """`g` as the gate would see it once `calls` earlier calls (`earlier`) costing `credits` were charged."""
    if not (calls or credits) or g.key is None:
        return g
    key = dataclasses.replace(g.key, credits=g.key.credits - credits, total_spent=g.key.total_spent + credits)
    return dataclasses.replace(
        g,
        key=key,
        quota_used=after(g.quota_used, calls, credits),
        team_used=after(g.team_used, calls, credits),
        tenant_used=after(g.tenant_used, calls, credits),
        team_spent=g.team_spent + credits,
        caps=g.caps.after(calls, credits) if g.caps is not None else None,
        budgets=g.budgets.after(calls, credits) if g.budgets is not None else None,
        quota_rules=rules_after(g, earlier),
    )


def first_unaffordable(inputs: Sequence[gate.GateInput]) -> tuple[int, gate.Denial] | None:
    """The first call of the batch the funds checks refuse, with the denial, or None when the batch as a
    whole is affordable. `inputs[i]` is call `i`'s gate input, its `price` that call's own."""
    spent = 0
    for i, g in enumerate(inputs):
        denial = gate.evaluate(projected(g, i, spent, inputs[:i]), gate.FUNDS_CHECKS)
        if denial is not None:
            if i:
                denial = gate.Denial(
                    denial.reason,
                    f"{denial.detail}, after {i} earlier call(s) of this batch costing {spent}",
                    denial.retry_after,
                )
            return i, denial
        spent += g.price
    return None
