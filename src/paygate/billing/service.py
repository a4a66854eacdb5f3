"""The money side of one tool call: admit (gate + rate + charge) and settle.

`admit` has no `await`: the gate's decision and the atomic charge happen in
one uninterrupted step of the event loop, so concurrent calls on one key
cannot both spend the same credits. Inside the event loop the charge is
group-committed: `Admitted.committed` resolves once it is on disk, and the
caller awaits it before forwarding the call (see `SQLiteStore.flush`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from paygate.billing.facts import NO_CLIENT, ClientFacts, GateFacts
from paygate.billing.outcomes import SHADOW, Admitted, GateVerdict, Refused, Settlement
from paygate.billing.quota import QuotaBook, quota_view, team_subject
from paygate.core import gate
from paygate.core.keys import hash_key
from paygate.core.policy import EffectivePolicy, Quota
from paygate.core.pricing import PriceBook, ToolPrice, call_price, output_surcharge, size_surcharge
from paygate.core.ratelimit import RateDecision
from paygate.core.records import KeyRecord, UsageEvent
from paygate.credentials.resolver import Credential, Credentials, Rejected
from paygate.keys import rotation
from paygate.metrics import Metrics
from paygate.store.base import Store

DEFAULT_COUNTRY_HEADER = "CF-IPCountry"


class BillingService:
    def __init__(
        self,
        store: Store,
        prices: PriceBook,
        metrics: Metrics,
        *,
        shadow: bool,
        refund_on_failure: bool,
        global_quota: Quota | None = None,
        trusted_proxies: tuple[str, ...] = (),
        country_header: str = DEFAULT_COUNTRY_HEADER,
    ) -> None:
        self.store = store
        self.prices = prices
        self.metrics = metrics
        self.shadow = shadow
        self.refund_on_failure = refund_on_failure
        self.quotas = QuotaBook()
        self.facts = GateFacts(
            store,
            self.quotas,
            global_quota=global_quota,
            trusted_proxies=trusted_proxies,
            country_header=country_header,
        )
        # Called with the key after each real charge, on the event loop (e.g. auto-topup). Each must be
        # cheap and must not raise; anything slow belongs in a task it schedules.
        self.after_charge: list[Callable[[KeyRecord], None]] = []
        # Called with the key and the denial after a real (not shadow) refusal of one of its calls, on the
        # event loop (e.g. a spend cap's suspend action). Same rules as `after_charge`.
        self.after_denial: list[Callable[[KeyRecord, gate.Denial], None]] = []
        # A store shared by several instances (Redis) checks the money limits again as it charges: the
        # gate here sees only this instance's counts. Set by the composition root.
        self.recheck_limits = False
        # Tokens that stand for a key (scoped tokens, OAuth access tokens): kinds added by the composition root
        self.credentials = Credentials()

    def reconfigure(self, prices: PriceBook, *, shadow: bool, refund_on_failure: bool, quota: Quota | None) -> None:
        """A hot reload (admin/reload.py): each setting replaced by a new object, in one step of the loop;
        a call admitted before keeps its `Admitted` (price, refund policy), the next sees the new set."""
        self.prices = prices
        self.shadow = shadow
        self.refund_on_failure = refund_on_failure
        self.facts.set_global_quota(quota)

    def start(self) -> None:
        """Rebuild today's and this month's quota counters from the usage log."""
        self.quotas.rebuild(self.store, time.time())

    def identify(self, raw_key: str | None) -> tuple[KeyRecord | None, Credential | Rejected | None]:
        """The key a credential bills, and the token it came as (None for the key itself): a token
        refused (`Rejected`) bills no key."""
        if not raw_key:
            return None, None
        kind = self.credentials.kind_of(raw_key)
        if kind is None:
            return self.store.get_key(hash_key(raw_key)), None
        token = kind.resolve(raw_key, time.time())
        if isinstance(token, Rejected):
            return None, token
        return self.store.get_key(token.key_hash), token

    def resolve(self, raw_key: str | None) -> KeyRecord | None:
        return self.identify(raw_key)[0]

    def session_owner(self, raw: str) -> tuple[str, bool]:
        """What a session opened with `raw` is bound to, and whether it names a key (only those bind one):
        the token's own owner if it has one (an OAuth grant), else the credential's hash."""
        key, token = self.identify(raw)
        owner = token.owner if isinstance(token, Credential) and token.owner else hash_key(raw)
        return owner, key is not None

    def policy_for(self, key: KeyRecord) -> EffectivePolicy:
        return self.facts.policy_for(key)

    def check_access(self, raw_key: str | None, client: ClientFacts = NO_CLIENT) -> gate.Denial | None:
        """For methods that need a valid key but cost nothing (resources/read, prompts/get …)."""
        key, token = self.identify(raw_key)
        policy = self.facts.policy_for(key) if key is not None else None
        g = self.facts.gate_input(key, raw_key is not None, "", 0, time.time(), client, policy, token)
        denial = gate.evaluate(g, gate.IDENTITY_CHECKS)  # no tool ACL: this is not a tool call
        if denial is not None and self.shadow:
            return None
        return denial

    def check_call_access(
        self, raw_key: str | None, tool: str, client: ClientFacts = NO_CLIENT
    ) -> tuple[KeyRecord | None, gate.Denial | None]:
        """The key a tool call bills and the gate's checks that charge nothing (identity, addresses, the
        tool's ACL, the token's tools): rate windows untouched. For an answer given without running the
        call (traffic/cache.py, traffic/dedup.py), which only a caller who could make the call may get."""
        key, token = self.identify(raw_key)
        policy = self.facts.policy_for(key) if key is not None else None
        g = self.facts.gate_input(key, raw_key is not None, tool, 0, time.time(), client, policy, token)
        denial = gate.evaluate(g, gate.ACCESS_CHECKS)
        return key, None if self.shadow else denial

    def price_of(self, policy: EffectivePolicy | None, tool: str, price: ToolPrice, input_bytes: int) -> int:
        """Credits charged up front: the (group-overridden) per-call price plus the input-size charge,
        scaled by the plan's multiplier."""
        if policy is None or (not policy.tool_prices and policy.credit_multiplier == 1):
            return call_price(price, input_bytes)
        base = policy.per_call(tool, price.credits_per_call) + size_surcharge(input_bytes, price.credits_per_kb_input)
        return policy.scale(base)

    def quote(self, key: KeyRecord | None, tool: str, input_bytes: int) -> int:
        """The credits `admit` would charge this key up front for this call (what a plugin's
        transform_price is shown); charges and counts nothing."""
        policy = self.facts.policy_for(key) if key is not None else None
        return self.price_of(policy, tool, self.prices.for_tool(tool), input_bytes)

    def admit(
        self,
        raw_key: str | None,
        tool: str,
        input_bytes: int,
        request_id: str | None,
        client: ClientFacts = NO_CLIENT,
        price_set: int | None = None,
    ) -> Admitted | Refused:
        """`price_set`: the up-front charge a plugin set (paygate/plugins, >= 0) in place of the price
        book's; the gate's funds checks and the ledger see it like any other price."""
        now = time.time()
        price = self.prices.for_tool(tool)
        key, token = self.identify(raw_key)
        policy = self.facts.policy_for(key) if key is not None else None
        amount = self.price_of(policy, tool, price, input_bytes) if price_set is None else price_set
        g = self.facts.gate_input(key, raw_key is not None, tool, amount, now, client, policy, token)
        rate: RateDecision | None = None
        subjects: list[str] = []

        denial = gate.evaluate(g, gate.ACCESS_CHECKS)
        if denial is None:
            assert key is not None
            denial, rate = self.hit_rate_windows(key, tool, price, policy, now, subjects)
        if denial is None:
            denial = gate.evaluate(g, gate.FUNDS_CHECKS)
        if denial is None:
            assert key is not None
            event = UsageEvent(
                now,
                key.key_hash,
                key.masked,
                key.name,
                tool,
                amount,
                True,
                namespace=key.namespace,
                request_id=request_id,
            )
            if self.shadow:  # shadow mode observes (a usage row), never charges
                self.observe(key, tool, now, request_id, SHADOW)
                return self.allowed(key, tool, price, 0, rate)
            limits = gate.limits_of_call(g) if self.recheck_limits else None
            result, committed = self.store.charge_deferred(key.key_hash, amount, event, limits)
            if result.ok:
                self.quotas.add(key, amount, now)
                self.facts.count(key, tool, 1, amount, now)  # in the step that checked: never overshot
                for hook in self.after_charge:
                    hook(key)
                admitted = self.allowed(key, tool, price, amount, rate)
                admitted.committed = committed
                return admitted
            denial = gate.Denial("insufficient_credits", f"need {amount}, have {result.balance}")

        for subject in subjects:  # a denied call does not use up the caller's rate window
            self.store.rate_undo(subject)
        if subjects and rate is not None and rate.allowed:
            rate = RateDecision(True, rate.limit, rate.remaining + 1, rate.reset_seconds)
        return self.denied(denial, key, tool, price, amount, rate, now, request_id)

    def dry_run(
        self, key: KeyRecord, tool: str, input_bytes: int = 0, client_ip: str | None = None, country: str | None = None
    ) -> GateVerdict:
        """The gate's verdict on a call by `key`, evaluated by the same checks as `admit` (rate windows
        peeked, not hit); nothing is charged, counted or recorded. `client_ip` / `country` stand in for
        the request's (None: as if the request carried none)."""
        now = time.time()
        price = self.prices.for_tool(tool)
        policy = self.facts.policy_for(key)
        amount = self.price_of(policy, tool, price, input_bytes)
        g = self.facts.gate_input(key, True, tool, amount, now, NO_CLIENT, policy)
        g = dataclasses.replace(g, client_ip=client_ip, country=country)
        denial = gate.evaluate(g, gate.ACCESS_CHECKS)
        if denial is None:
            denial = self._peek_rate_windows(key, tool, price, policy, now)
        if denial is None:
            denial = gate.evaluate(g, gate.FUNDS_CHECKS)
        if denial is None:
            return GateVerdict(True, None, "", amount, key.credits)
        return GateVerdict(False, denial.reason, denial.detail, amount, key.credits)

    def rate_window(self, key: KeyRecord, limit: int, now: float) -> RateDecision:
        """The key's global rate window as it stands (for the X-RateLimit-* headers); counts nothing."""
        return self.store.rate_peek(key.key_hash, limit, now)

    def rate_limit_for(self, policy: EffectivePolicy | None) -> int:
        """The key's calls/min: its group's or plan's limit, else the global one (0: none)."""
        return (policy.rate_limit_per_min if policy is not None else None) or self.prices.global_rate_limit

    def quota_status(self, key: KeyRecord) -> dict[str, Any]:
        return quota_view(self.facts.policy_for(key), self.quotas.snapshot(key.key_hash, time.time()))

    def team_usage(self, team_id: str) -> dict[str, int]:
        used = self.quotas.snapshot(team_subject(team_id), time.time())
        return {
            "spent": self.quotas.shared_team_spent(team_id),
            "dailyCalls": used.day_calls,
            "dailyCredits": used.day_credits,
            "monthlyCalls": used.month_calls,
            "monthlyCredits": used.month_credits,
        }

    def current(self, key: KeyRecord) -> KeyRecord:
        """The live successor of a key rotated away (see keys/rotation.py), or the key itself."""
        return rotation.current(self.store, key)

    def move_counters(self, old_hash: str, new_hash: str) -> None:
        """After a rotation: rate windows and quota counters follow the key."""
        self.quotas.move(old_hash, new_hash)
        self.store.rate_move(old_hash, new_hash)

    def hit_rate_windows(
        self,
        key: KeyRecord,
        tool: str,
        price: ToolPrice,
        policy: EffectivePolicy | None,
        now: float,
        subjects: list[str],
    ) -> tuple[gate.Denial | None, RateDecision | None]:
        rate = None
        global_limit = self.rate_limit_for(policy)
        if global_limit and self.facts.adaptive is not None:  # adaptive rates (rules/adaptive.py), when on
            global_limit = self.facts.adaptive.limit(key.key_hash, global_limit)
        if global_limit:
            rate = self.store.rate_hit(key.key_hash, global_limit, now)
            if not rate.allowed:
                return gate.Denial("rate_limited", f"{global_limit} calls/min"), rate
            subjects.append(key.key_hash)
        if price.rate_limit_per_min:
            subject = f"{key.key_hash}\x00{tool}"
            rate = self.store.rate_hit(subject, price.rate_limit_per_min, now)
            if not rate.allowed:
                return gate.Denial("tool_rate_limited", f"{tool}: {price.rate_limit_per_min} calls/min"), rate
            subjects.append(subject)
        return self.facts.tenant_window(key, now, subjects), rate  # all the tenant's keys together

    def _peek_rate_windows(
        self,
        key: KeyRecord,
        tool: str,
        price: ToolPrice,
        policy: EffectivePolicy | None,
        now: float,
    ) -> gate.Denial | None:
        limit = self.facts.rate_limit(key.key_hash, self.rate_limit_for(policy))
        if limit and not self.store.rate_peek(key.key_hash, limit, now).allowed:
            return gate.Denial("rate_limited", f"{limit} calls/min")
        tool_limit = price.rate_limit_per_min
        if tool_limit and not self.store.rate_peek(f"{key.key_hash}\x00{tool}", tool_limit, now).allowed:
            return gate.Denial("tool_rate_limited", f"{tool}: {tool_limit} calls/min")
        return self.facts.tenant_window(key, now, None)

    def allowed(
        self,
        key: KeyRecord,
        tool: str,
        price: ToolPrice,
        charged: int,
        rate: RateDecision | None,
    ) -> Admitted:
        label = self.metrics.tool_label(tool)
        self.metrics.tool_calls_for(label, "allowed").inc()
        if charged:
            self.metrics.credits_charged_for(label).inc(charged)
        return Admitted(key, tool, price, charged, rate, refund_on_failure=self.refund_on_failure)

    def denied(
        self,
        denial: gate.Denial,
        key: KeyRecord | None,
        tool: str,
        price: ToolPrice,
        amount: int,
        rate: RateDecision | None,
        now: float,
        request_id: str | None,
    ) -> Admitted | Refused:
        self.metrics.denials_for(denial.reason).inc()
        if denial.reason in ("rate_limited", "tool_rate_limited"):
            self.metrics.rate_limit_hits_for(self.metrics.tool_label(tool)).inc()
        if self.shadow:
            self.metrics.tool_calls_for(self.metrics.tool_label(tool), "shadow").inc()
            reason = f"{SHADOW}:{denial.reason}"
            if key is not None:
                self.observe(key, tool, now, request_id, reason)
            return Admitted(key, tool, price, 0, rate, shadow_reason=reason)
        self.metrics.tool_calls_for(self.metrics.tool_label(tool), "denied").inc()
        if key is not None:
            self.store.record_denial(
                UsageEvent(
                    now, key.key_hash, key.masked, key.name, tool, 0, False, denial.reason, key.namespace, request_id
                )
            )
            for hook in self.after_denial:
                hook(key, denial)
        return Refused(denial, key, tool, price, amount, rate)

    def observe(self, key: KeyRecord, tool: str, now: float, request_id: str | None, reason: str) -> None:
        """Shadow mode's usage row for a call let through uncharged: `shadow`, or `shadow:<reason>`
        for one the gate would have refused. The key's balance and counters are not touched."""
        self.store.record_denial(
            UsageEvent(now, key.key_hash, key.masked, key.name, tool, 0, True, reason, key.namespace, request_id)
        )

    def settle(self, admitted: Admitted, failed: bool, output_bytes: int, *, delivered: bool = True) -> Settlement:
        """After the backend answered: refund a failure, or add the output-size surcharge.
        A call that never reached the backend is refunded whatever the refund policy."""
        if admitted.key is None or admitted.shadow_reason is not None:
            return Settlement()
        key = admitted.key = self.current(admitted.key)  # rotated while the call ran: settle on the new key
        if failed and (admitted.refund_on_failure or not delivered) and admitted.charged:
            self.store.refund(key.key_hash, admitted.charged, f"refund:{admitted.tool}")
            self.quotas.remove(key, admitted.charged, time.time())
            self.facts.uncount(key, admitted.tool, 1, admitted.charged, time.time())
            self.metrics.refunds_for(self.metrics.tool_label(admitted.tool)).inc()
            return Settlement(refunded=admitted.charged)
        extra = output_surcharge(admitted.price, output_bytes) if not failed else 0
        if extra:
            taken, _ = self.store.charge_up_to(key.key_hash, extra, f"output:{admitted.tool}")
            if taken:  # spent: counts toward the credit caps and rules from now on
                self.facts.count(key, admitted.tool, 0, taken, time.time())
                self.metrics.credits_charged_for(self.metrics.tool_label(admitted.tool)).inc(taken)
            return Settlement(surcharge=taken)
        return Settlement()
