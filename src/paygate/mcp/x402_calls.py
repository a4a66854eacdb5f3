"""x402 on /mcp (paygate/x402/, docs/x402.md): the dispatcher's two hooks, both taken only when x402 is
on. A `tools/call` about to be refused for want of a key or credits is answered with the payment
requirements instead; a `tools/call` carrying a payment (`params._meta["x402/payment"]`, or the
`X-PAYMENT` / `PAYMENT-SIGNATURE` header) is verified, run, settled after success and answered with the
receipt. No key is charged for a paid call."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from paygate.billing.outcomes import Refused
from paygate.core import errors
from paygate.core.pricing import call_price
from paygate.mcp import jsonrpc
from paygate.mcp.gate_answers import unknown_tool
from paygate.mcp.jsonrpc import Message
from paygate.x402 import offers
from paygate.x402.service import Claimed, Rejected, X402Service, identity_of, receipt_header

if TYPE_CHECKING:
    from paygate.mcp.call_context import CallContext
    from paygate.mcp.dispatcher import Dispatcher

PAYMENT_META = "x402/payment"
RECEIPT_META = "x402/payment-response"
PAYMENT_HEADERS = (b"x-payment", b"payment-signature")  # the reference's (x402 v1) name, and v2's
PAYABLE = frozenset({"missing_api_key", "invalid_api_key", "insufficient_credits"})
PAYMENT_REQUIRED_CODE = 402  # x402's MCP transport (JSON-RPC error form)


class PaidCalls:
    def __init__(self, dispatcher: Dispatcher, service: X402Service) -> None:
        self.dispatcher = dispatcher
        self.service = service

    # hook 1: a call carrying a payment ------------------------------------------------------------
    @staticmethod
    def payment_of(params: Any, ctx: CallContext) -> Any:
        """The payment a call carries (the `_meta` value, or the header's bytes), else None."""
        if params.__class__ is dict:
            meta = params.get("_meta")
            if meta.__class__ is dict and meta.get(PAYMENT_META) is not None:
                return meta[PAYMENT_META]
        headers = ctx.client.headers
        if headers:
            for name in PAYMENT_HEADERS:
                if (value := headers.get(name)) is not None:
                    return value
        return None

    async def call(self, msg_id: Any, params: Any, ctx: CallContext, raw: Any) -> Message:
        d = self.dispatcher
        if not isinstance(params, dict) or not isinstance(params.get("name"), str):
            return jsonrpc.error(msg_id, errors.INVALID_PARAMS, "tools/call needs params.name (a string)")
        tool: str = params["name"]
        arguments = params.get("arguments", {})
        if not isinstance(arguments, dict):
            return jsonrpc.error(msg_id, errors.INVALID_PARAMS, "tools/call params.arguments must be an object")
        if not d.tool_known(tool) and not await d.known_after_refresh(tool):
            return unknown_tool(msg_id, tool)
        if not d.backend.ready:
            return jsonrpc.error(msg_id, errors.BACKEND_UNAVAILABLE, "Backend unavailable: not ready")
        if d.traffic.checks_on and (refused := d.traffic.precheck(msg_id, tool, params, ctx)) is not None:
            return refused  # before any payment is asked for or claimed
        if d.plugins is not None and (refused := await d.plugins.refusal(msg_id, tool, arguments, ctx)) is not None:
            return refused  # a plugin's before_gate: before the payment is looked at (paygate/plugins)
        credits = self.price(tool, arguments)
        try:
            payload = offers.parse_header(raw) if isinstance(raw, bytes) else offers.parse_meta(raw)
        except offers.BadPayment as exc:
            self.service.fail(tool, "parse", "payment_unreadable", ctx.request_id)
            return self.ask(msg_id, tool, credits, "payment_unreadable", str(exc))
        claimed = self.service.claim(payload, tool, credits)
        if isinstance(claimed, Rejected):
            return self._rejected(msg_id, tool, credits, claimed, ctx)
        rejected = await self.service.verify(claimed)
        if rejected is not None:
            return self._rejected(msg_id, tool, credits, rejected, ctx, claimed.payer)
        started = time.perf_counter()
        forwarded = {k: v for k, v in params.items() if k != "_meta"}  # the payment is ours, not the server's
        if isinstance(params.get("_meta"), dict):
            rest = {k: v for k, v in params["_meta"].items() if k != PAYMENT_META}
            if rest:
                forwarded["_meta"] = rest
        reply, _ = await d.forward(msg_id, "tools/call", forwarded, ctx)
        if jsonrpc.is_failure(reply):  # nothing settled: the payment is the client's to use again
            self.service.release(claimed)
            self.service.fail(tool, "tool", "the tool failed; not settled", ctx.request_id, claimed.payer)
            return reply
        receipt = await self.service.settle(claimed, ctx.request_id)
        if not receipt.success:  # the result is withheld: it was not paid for
            text = f"settlement failed: {receipt.error_reason or 'unknown'}"
            answer = self.ask(msg_id, tool, credits, "payment_not_settled", text, count=False)
            failure = {
                "success": False,
                "errorReason": receipt.error_reason or "settlement failed",
                "transaction": "",
                "network": claimed.offered.network,
            }
            if "result" in answer:
                answer["result"]["structuredContent"][RECEIPT_META] = failure
            else:
                answer["error"]["data"][RECEIPT_META] = failure
            return answer
        shown = receipt.model_dump(by_alias=True, exclude_none=True)
        result = reply.get("result")
        if isinstance(result, dict):
            meta = result.get("_meta")
            result["_meta"] = {**(meta if isinstance(meta, dict) else {}), RECEIPT_META: shown}
        ctx.payment_response = receipt_header(receipt)
        self._publish_allow(tool, credits, ctx, started, receipt.payer or claimed.payer)
        return reply

    def price(self, tool: str, arguments: dict[str, Any]) -> int:
        """The tool's public price for these arguments (a key's own discounts do not apply to a payment)."""
        price = self.dispatcher.billing.prices.for_tool(tool)
        input_bytes = len(orjson.dumps(arguments)) if arguments and price.credits_per_kb_input else 0
        return call_price(price, input_bytes)

    def _rejected(
        self, msg_id: Any, tool: str, credits: int, rejected: Rejected, ctx: CallContext, payer: str | None = None
    ) -> Message:
        self.service.fail(
            tool, "verify" if rejected.reason != "payment_replayed" else "claim", rejected.reason, ctx.request_id, payer
        )
        if rejected.reason == "facilitator_unavailable":
            return jsonrpc.error(msg_id, errors.BACKEND_UNAVAILABLE, rejected.detail, {"reason": rejected.reason})
        return self.ask(msg_id, tool, credits, rejected.reason, rejected.detail)

    def _publish_allow(self, tool: str, credits: int, ctx: CallContext, started: float, payer: str | None) -> None:
        identity = identity_of(payer)
        self.dispatcher.events.emit(
            "gate.allow",
            identity,
            {
                "tool": tool,
                "keyMasked": None,
                "credits": credits,
                "durationMs": round((time.perf_counter() - started) * 1000, 3),
                "requestId": ctx.request_id,
                "failed": False,
                "paidBy": "x402",
                "payer": payer,
            },
            request_id=ctx.request_id,
            key_hash=identity,
        )

    # hook 2: a call about to be refused -------------------------------------------------------------
    def instead_of(self, msg_id: Any, refused: Refused, params: dict[str, Any]) -> Message | None:
        """The payment requirements in place of a refusal for want of a key or credits, else None."""
        reason = refused.denial.reason
        if reason not in PAYABLE or not self.service.enabled:
            return None
        arguments = params.get("arguments")
        credits = self.price(refused.tool, arguments if isinstance(arguments, dict) else {})
        text = f"{errors.reason(reason).message} ({refused.denial.text}); or pay for this call with x402"
        extra = {
            "tool": refused.tool,
            "creditsRequired": credits,
            "creditsRemaining": refused.key.credits if refused.key is not None else None,
            "pricing": refused.price.public(),
        }
        return self.ask(msg_id, refused.tool, credits, reason, text, extra=extra)

    def ask(
        self,
        msg_id: Any,
        tool: str,
        credits: int,
        reason: str,
        text: str,
        *,
        extra: dict[str, Any] | None = None,
        count: bool = True,
    ) -> Message:
        """Payment required, the way x402's MCP transport says it: a tool result with `isError` and the
        `PaymentRequired` as structured content and as text (the spec's and the package's client's form),
        or, with `signal: "error"`, a JSON-RPC error 402 carrying it in `data` (the draft's form). Our own
        denial fields (`reason`, `httpStatus`, …) ride along: in `data`, or in `_meta["paygate/deny"]`."""
        required = (
            self.service.payment_required(tool, credits, text)
            if count
            else offers.payment_required(tool, credits, self.service.config, text)
        )
        ours = {"reason": reason, "httpStatus": 402, **(extra or {"tool": tool, "creditsRequired": credits})}
        if self.service.config.signal == "error":
            return jsonrpc.error(msg_id, PAYMENT_REQUIRED_CODE, text, {**required, **ours})
        body = orjson.dumps(required).decode()
        return jsonrpc.result(
            msg_id,
            {
                "isError": True,
                "structuredContent": required,
                "content": [{"type": "text", "text": body}],
                "_meta": {"paygate/deny": ours},
            },
        )


__all__ = ["Claimed", "PaidCalls"]
