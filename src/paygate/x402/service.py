"""x402 payments on /mcp: offer, claim, verify, settle, record (docs/x402.md).

A payment is claimed before it is verified and is used once: the claim is the store's creation of its
document (kind `x402_payment`; `doc_create` writes only if the id is free, exactly one of racing instances
of a fleet wins), taken with no `await` between the check and the mark, so concurrent reuse loses and a
replay after a restart, or on another instance, is refused too. The claim is dropped again when nothing
was settled (verification refused, the tool failed): the signed authorization was not used and may be
offered again. After a settlement attempt it is kept, whatever the answer, until `paymentTtlSeconds`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from x402.http.facilitator_client import HTTPFacilitatorClient
from x402.http.facilitator_client_base import AuthHeaders, FacilitatorConfig
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse

from paygate.config_x402 import X402Config
from paygate.core.domain_errors import Invalid
from paygate.core.records import UsageEvent
from paygate.core.values import iso_time
from paygate.events.hub import EventHub
from paygate.store.base import Store
from paygate.x402 import offers

log = logging.getLogger("paygate.x402")
KIND = "x402_payment"
RECENT = 20  # settlements GET /admin/x402 shows
PAID_REASON = "x402"  # usage rows of paid calls: `allowed`, key hash `x402:<payer>` (docs/x402.md)


class _Auth:
    """The facilitator's credential, sent on every request (never logged, never shown)."""

    def __init__(self, value: str) -> None:
        self._headers = {"Authorization": value}

    def get_auth_headers(self) -> AuthHeaders:
        return AuthHeaders(verify=self._headers, settle=self._headers, supported=self._headers)


@dataclass(slots=True)
class Claimed:
    """A payment this call holds: verified against `offered`, not yet settled."""

    payment_id: str
    payload: PaymentPayload
    offered: PaymentRequirements
    tool: str
    credits: int
    payer: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # payment_replayed, payment_mismatch, payment_invalid, facilitator_unavailable
    detail: str


class X402Service:
    def __init__(self, config: X402Config, store: Store, events: EventHub, now: Callable[[], float] = time.time):
        self.store = store
        self.events = events
        self.now = now
        self._claims: set[str] = set()  # payment ids this instance holds right now
        self.counts: Counter[str] = Counter()  # since start: requested, settled, failed, replayed, invalid
        self.on_switch: list[Callable[[bool], None]] = []  # told when it is switched on or off (the dispatcher)
        self.config = config
        self._client: HTTPFacilitatorClient | None = None
        self._ready: asyncio.Lock | None = None
        self._build_client()

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def _build_client(self) -> None:
        c = self.config
        auth = _Auth(c.facilitator_auth_header) if c.facilitator_auth_header else None
        # The package's facilitator client, called directly: its resource server would also want a scheme
        # implementation registered per network, and the EVM one needs the [evm] extra (web3), which the
        # gateway has no use for (it neither signs nor checks signatures; the facilitator does).
        self._client = HTTPFacilitatorClient(
            FacilitatorConfig(url=c.facilitator_url, timeout=c.facilitator_timeout_seconds, auth_provider=auth)
        )
        self._initialized = False

    async def start(self) -> None:
        """Ask the facilitator what it supports (`/supported`); a failure is retried at the first payment."""
        self.sweep(self.now())
        try:
            await self._initialize()
        except Exception as exc:  # the gateway serves keyed calls whatever the facilitator does
            log.warning("x402 facilitator %s not reachable yet: %s", self.config.facilitator_url, exc)

    async def _initialize(self) -> HTTPFacilitatorClient:
        """The facilitator's `/supported` must list `exact` on the configured network (asked once)."""
        if self._ready is None:
            self._ready = asyncio.Lock()
        async with self._ready:
            client = self._client
            assert client is not None
            if not self._initialized:
                supported = await asyncio.to_thread(client.get_supported)  # the package asks synchronously
                network = self.config.network
                if not any(k.scheme == offers.SCHEME and k.network == network for k in supported.kinds):
                    raise RuntimeError(f"the facilitator does not support scheme exact on {network}")
                self._initialized = True
            return client

    # asking -------------------------------------------------------------------------------------
    def payment_required(self, tool: str, credits: int, error: str) -> dict[str, Any]:
        self.counts["requested"] += 1
        return offers.payment_required(tool, credits, self.config, error)

    # paying -------------------------------------------------------------------------------------
    def claim(self, payload: PaymentPayload, tool: str, credits: int) -> Claimed | Rejected:
        """Check the payment is for this call's price and take it (no await: concurrent reuse loses)."""
        offered = offers.requirements(credits, self.config)
        if not offers.matches(payload, offered):
            self.counts["invalid"] += 1
            return Rejected("payment_mismatch", "the payment is not for this tool's price, payee or token")
        pid = offers.payment_id(payload)
        now = self.now()
        claim = {
            "id": pid,
            "state": "claimed",
            "tool": tool,
            "at": now,
            "expiresAt": now + self.config.payment_ttl_seconds,
        }
        # the store's claim of the id: of instances sharing a store and racing, exactly one wins
        if pid in self._claims or not self.store.doc_create(KIND, pid, claim):
            self.counts["replayed"] += 1
            return Rejected("payment_replayed", "this payment was already used")
        self._claims.add(pid)
        return Claimed(pid, payload, offered, tool, credits, offers.payer_of(payload))

    def release(self, claimed: Claimed) -> None:
        """Nothing was settled: the payment may be offered again."""
        self._claims.discard(claimed.payment_id)
        self.store.doc_delete(KIND, claimed.payment_id)

    async def verify(self, claimed: Claimed) -> Rejected | None:
        try:
            client = await self._initialize()
            result = await client.verify(claimed.payload, claimed.offered)
        except Exception as exc:
            self.release(claimed)
            log.warning("x402 verify failed: %s", exc)
            return Rejected("facilitator_unavailable", "the payment could not be verified; try again")
        if not result.is_valid:
            self.release(claimed)
            self.counts["invalid"] += 1
            reason = result.invalid_reason or "invalid"
            return Rejected("payment_invalid", f"the facilitator refused the payment: {reason}"[:300])
        if result.payer:
            claimed.payer = result.payer
        return None

    async def settle(self, claimed: Claimed, request_id: str | None) -> SettleResponse:
        """Settle after the tool succeeded; the claim is kept whatever the outcome (the facilitator may
        have sent the transaction even when it answered with an error)."""
        try:
            client = await self._initialize()
            response = await client.settle(claimed.payload, claimed.offered)
        except Exception as exc:
            log.warning("x402 settle failed: %s", exc)
            response = SettleResponse(
                success=False, error_reason="facilitator_error", transaction="", network=claimed.offered.network
            )
        self._claims.discard(claimed.payment_id)
        self._record(claimed, response, request_id)
        return response

    def _record(self, claimed: Claimed, response: SettleResponse, request_id: str | None) -> None:
        now = self.now()
        payer = response.payer or claimed.payer
        doc = {
            "id": claimed.payment_id,
            "state": "settled" if response.success else "settle_failed",
            "tool": claimed.tool,
            "credits": claimed.credits,
            "amount": claimed.offered.amount,
            "asset": claimed.offered.asset,
            "network": claimed.offered.network,
            "payer": payer,
            "transaction": response.transaction or None,
            "error": None if response.success else (response.error_reason or "settlement failed"),
            "requestId": request_id,
            "at": now,
            "expiresAt": now + self.config.payment_ttl_seconds,
        }
        self.store.doc_put(KIND, claimed.payment_id, doc)
        shown = {k: doc[k] for k in ("tool", "credits", "amount", "asset", "network", "payer", "transaction")}
        if response.success:
            self.counts["settled"] += 1
            identity = identity_of(payer)
            # A usage row like a charged call's (reports count it), under the payer's synthetic identity:
            # no key is charged. `record_denial` writes a row and moves no money.
            self.store.record_denial(
                UsageEvent(
                    now, identity, identity, "x402", claimed.tool, claimed.credits, True, None, "default", request_id
                )
            )
            self.events.emit("x402.settled", identity, {**shown, "requestId": request_id})
        else:
            self.counts["failed"] += 1
            self.fail(claimed.tool, "settlement", response.error_reason or "settlement failed", request_id, payer)

    def fail(self, tool: str, stage: str, reason: str | None, request_id: str | None, payer: str | None = None) -> None:
        self.events.emit(
            "x402.failed",
            identity_of(payer),
            {"tool": tool, "stage": stage, "reason": reason, "payer": payer, "requestId": request_id},
        )

    def sweep(self, now: float) -> int:
        """Forget used payments older than `paymentTtlSeconds` (a ticker; also at start)."""
        gone = 0
        for pid, doc in self.store.doc_items(KIND):
            expires = doc.get("expiresAt")
            if isinstance(expires, int | float) and expires <= now and self.store.doc_delete(KIND, pid):
                gone += 1
        return gone

    # admin ----------------------------------------------------------------------------------------
    def view(self) -> dict[str, Any]:
        docs = self.store.doc_list(KIND)
        settled = sorted((d for d in docs if d.get("state") == "settled"), key=lambda d: d.get("at", 0), reverse=True)
        recent = [
            {
                **{k: d.get(k) for k in ("tool", "credits", "amount", "network", "payer", "transaction", "requestId")},
                "settledAt": iso_time(float(d.get("at", 0))),
            }
            for d in settled[:RECENT]
        ]
        states = Counter(str(d.get("state")) for d in docs)
        return {
            "enabled": self.enabled,
            "config": self.config.public(),
            "facilitatorReady": self._initialized,
            "counts": {
                "sinceStart": {
                    k: self.counts.get(k, 0) for k in ("requested", "settled", "failed", "replayed", "invalid")
                },
                "stored": {k: states.get(k, 0) for k in ("claimed", "settled", "settle_failed")},
            },
            "recentSettlements": recent,
        }

    def update(self, changes: dict[str, Any], actor: str) -> dict[str, Any]:
        """Apply a partial change (validated as a whole); publishes `x402.updated` (audited)."""
        merged = {**self.config.model_dump(by_alias=True), **changes}
        try:
            config = X402Config.model_validate(merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise Invalid(f"x402: {'.'.join(str(p) for p in first['loc']) or 'settings'}: {first['msg']}") from None
        old = self.config
        self.config = config
        if (config.facilitator_url, config.facilitator_auth_header, config.facilitator_timeout_seconds) != (
            old.facilitator_url,
            old.facilitator_auth_header,
            old.facilitator_timeout_seconds,
        ):
            self._build_client()
        if config.enabled != old.enabled:
            for hook in self.on_switch:
                hook(config.enabled)
        shown = sorted(k for k in changes if k != "facilitatorAuthHeader")
        secret = ["facilitatorAuthHeader"] if "facilitatorAuthHeader" in changes else []
        self.events.emit("x402.updated", actor, {"changed": shown + secret, "enabled": config.enabled})
        return self.view()


def identity_of(payer: str | None) -> str:
    """The synthetic identity a paid call is recorded under (no key: `x402:<payer address>`)."""
    return f"x402:{payer.lower()}" if payer else "x402:unknown"


def receipt_header(response: SettleResponse) -> bytes:
    """`X-PAYMENT-RESPONSE`: base64 of the settlement's JSON."""
    return base64.b64encode(orjson.dumps(response.model_dump(by_alias=True, exclude_none=True)))
