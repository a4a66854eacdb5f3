"""The money side of `tools/call_batch`: admit a batch of calls on one key whole, or not at all.

Like `BillingService.admit`, with no `await` from the first check to the charge. In order:
each call's access checks (key, IP, country, ACL); each call's rate windows (a batch of N calls
counts N calls, global and per tool); the funds checks on the batch as a whole (core/batch_gate.py);
then one all-or-nothing charge of every call (`Store.charge_many_deferred`), each with its own
usage row and ledger entry. The first refusal refuses the batch: the rate windows it touched are
given back, nothing is charged, and every call is recorded as denied — the one refused with its
reason, the others with `batch_rejected`. Shadow mode admits every call uncharged, as it does single
calls. Each admitted call is settled (refund, output surcharge) on its own by `BillingService.settle`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from paygate.billing.facts import NO_CLIENT, ClientFacts
from paygate.billing.outcomes import SHADOW, Admitted, Refused
from paygate.billing.service import BillingService
from paygate.core import gate
from paygate.core.batch_gate import first_unaffordable
from paygate.core.policy import EffectivePolicy
from paygate.core.ratelimit import RateDecision
from paygate.core.records import KeyRecord, UsageEvent

BATCH_REJECTED = "batch_rejected"  # the reason recorded for a batch's calls that were refused for another's sake


@dataclass(slots=True)
class BatchAdmitted:
    calls: list[Admitted]  # one per call, in order
    key: KeyRecord | None
    rate: RateDecision | None
    committed: asyncio.Future[None] | None = None  # await before running any call


@dataclass(slots=True)
class BatchRefused:
    index: int  # the call that was refused
    calls: list[Refused]  # one per call: `index` with its own reason, the others `batch_rejected`
    key: KeyRecord | None
    rate: RateDecision | None
    total: int  # what the whole batch would have cost

    @property
    def refused(self) -> Refused:
        return self.calls[self.index]


def admit_batch(
    billing: BillingService,
    raw_key: str | None,
    calls: Sequence[tuple[str, int]],
    request_id: str | None,
    client: ClientFacts = NO_CLIENT,
    prices_set: Sequence[int | None] | None = None,
) -> BatchAdmitted | BatchRefused:
    """Gate and charge `calls` — (tool, input bytes) each — for the key `raw_key`, all or nothing.
    `prices_set`: a plugin's up-front charge per call (None: the price book's), as in `billing.admit`."""
    now = time.time()
    key, token = billing.identify(raw_key)
    policy = billing.facts.policy_for(key) if key is not None else None
    prices = [billing.prices.for_tool(tool) for tool, _ in calls]
    amounts = [billing.price_of(policy, tool, price, size) for (tool, size), price in zip(calls, prices, strict=True)]
    if prices_set is not None:
        amounts = [a if p is None else p for a, p in zip(amounts, prices_set, strict=True)]
    inputs = [
        billing.facts.gate_input(key, raw_key is not None, tool, amount, now, client, policy, token)
        for (tool, _), amount in zip(calls, amounts, strict=True)
    ]
    subjects: list[str] = []
    failure: tuple[int, gate.Denial] | None = None
    for i, g in enumerate(inputs):
        denial = gate.evaluate(g, gate.ACCESS_CHECKS)
        if denial is None:
            assert key is not None
            denial, _ = billing.hit_rate_windows(key, g.tool, prices[i], policy, now, subjects)
        if denial is not None:
            failure = (i, denial)
            break
    if failure is None:
        failure = first_unaffordable(inputs)
    if failure is None and not billing.shadow:
        assert key is not None
        charges = [
            (
                amount,
                UsageEvent(
                    now,
                    key.key_hash,
                    key.masked,
                    key.name,
                    tool,
                    amount,
                    True,
                    namespace=key.namespace,
                    request_id=request_id,
                ),
            )
            for (tool, _), amount in zip(calls, amounts, strict=True)
        ]
        limits = gate.limits_of_call(inputs[0]) if billing.recheck_limits and inputs else None
        result, committed = billing.store.charge_many_deferred(key.key_hash, charges, limits)
        if result.ok:
            for (tool, _), amount in zip(calls, amounts, strict=True):
                billing.quotas.add(key, amount, now)
                billing.facts.count(key, tool, 1, amount, now)  # in the step that checked
            for hook in billing.after_charge:
                hook(key)
            admitted = [
                billing.allowed(key, tool, price, amount, None)
                for (tool, _), price, amount in zip(calls, prices, amounts, strict=True)
            ]
            return BatchAdmitted(admitted, key, _rate(billing, key, policy, now), committed)
        failure = (0, gate.Denial("insufficient_credits", f"need {sum(amounts)}, have {result.balance}"))
    if failure is None:  # shadow mode: observed, never charged
        assert key is not None
        for tool, _ in calls:
            billing.observe(key, tool, now, request_id, SHADOW)
        admitted = [billing.allowed(key, tool, price, 0, None) for (tool, _), price in zip(calls, prices, strict=True)]
        return BatchAdmitted(admitted, key, _rate(billing, key, policy, now))

    for subject in subjects:  # a refused batch does not use up the caller's rate windows
        billing.store.rate_undo(subject)
    index, denial = failure
    rate = _rate(billing, key, policy, now) if key is not None else None
    outcomes = []
    for i, ((tool, _), price, amount) in enumerate(zip(calls, prices, amounts, strict=True)):
        why = (
            denial
            if i == index
            else gate.Denial(BATCH_REJECTED, f"call {index} of the batch was refused ({denial.reason})")
        )
        outcomes.append(billing.denied(why, key, tool, price, amount, rate, now, request_id))
    refusals = [o for o in outcomes if isinstance(o, Refused)]
    if len(refusals) == len(outcomes):
        return BatchRefused(index, refusals, key, rate, sum(amounts))
    # shadow mode: every call goes through uncharged, marked with why the batch would have been refused
    shadowed = [o for o in outcomes if isinstance(o, Admitted)]
    for call in shadowed:
        call.shadow_reason = f"shadow:{denial.reason}"
    return BatchAdmitted(shadowed, key, rate)


def _rate(billing: BillingService, key: KeyRecord, policy: EffectivePolicy | None, now: float) -> RateDecision | None:
    """The key's global rate window as it stands now (for the response's X-RateLimit-* headers)."""
    limit = billing.facts.rate_limit(key.key_hash, billing.rate_limit_for(policy))
    return billing.rate_window(key, limit, now) if limit else None
