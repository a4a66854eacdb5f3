"""What the gateway does with each JSON-RPC message from a client.

`initialize` and `ping` are answered here from the backend's own handshake
(one upstream session serves every client); `tools/list` comes from the
cached tool list with `_pricing` added; `tools/call` is gated and charged;
other requests need a valid key and are forwarded free of charge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from paygate.billing.outcomes import Admitted, Refused
from paygate.billing.service import BillingService
from paygate.core import errors
from paygate.credentials.resolver import Credential
from paygate.events.hub import EventHub
from paygate.mcp import call_batch, jsonrpc
from paygate.mcp.backends.base import Backend, BackendError, BackendTimeout, BackendUnavailable
from paygate.mcp.call_context import CallContext
from paygate.mcp.cancellation import CancelledByClient, InFlight
from paygate.mcp.discovery import DynamicDiscovery
from paygate.mcp.gate_answers import denial_error, recorded, refusal, unknown_tool, unstaged
from paygate.mcp.gate_events import GateEvents
from paygate.mcp.handshake import initialize_result
from paygate.mcp.input_required import asks_for_input, with_answers
from paygate.mcp.jsonrpc import Message
from paygate.mcp.origin import current_origin
from paygate.mcp.relay import ClientCannotAnswer, Relay
from paygate.mcp.tasks import TASK_METHODS, TaskHandler, offer_tasks
from paygate.traffic.chain import ToolCall, Traffic, Upstream

if TYPE_CHECKING:
    from paygate.mcp.x402_calls import PaidCalls
    from paygate.plugins.gate import PluginGate

log = logging.getLogger("paygate.mcp")
UNKNOWN_TOOL_REFRESH = 5.0  # seconds between tool-list refreshes caused by calls to unknown tools


class Dispatcher:
    def __init__(
        self,
        backend: Backend,
        billing: BillingService,
        free_methods: list[str],
        tool_timeout: float,
        events: EventHub,
        relay: Relay,
        discovery: str = "static",
    ) -> None:
        self.backend = backend
        self.relay = relay  # server → client traffic (relay.py)
        self.discovery = DynamicDiscovery(self) if discovery == "dynamic" else None  # mcp/discovery.py
        self.events = events
        self.tasks: TaskHandler | None = None  # MCP tasks (mcp/task_calls.py), set by the composition root
        self.x402: PaidCalls | None = None  # x402 pay-per-call (mcp/x402_calls.py), only while it is on
        self.gate_events = GateEvents(events)  # gate.allow / gate.deny (mcp/gate_events.py)
        self.publish_deny = self.gate_events.denied
        self.publish_store_refusal = self.gate_events.store_refused
        # the plugins' before_gate / transform_price (paygate/plugins), only when a plugin has them
        self.plugins: PluginGate | None = None
        # cache, breaker, limits, retries, canary, ... (paygate/traffic), set up by compose
        self.traffic = Traffic(self._gated_call, self._send_upstream)
        # Whether a tool has content controls (paygate/content), which run only as call stages: set by compose.
        self.staged_only: Callable[[str], bool] | None = None
        self.in_flight = InFlight()  # forwarded requests a client may cancel (mcp/cancellation.py)
        self.billing = billing
        self.free_methods = frozenset(free_methods) - {"tools/call"}  # tools/call is always gated
        self.tool_timeout = tool_timeout
        self._tools_source: list[dict[str, Any]] | None = None
        self._priced_tools: list[dict[str, Any]] = []
        self._tool_names: frozenset[str] = frozenset()
        self._unknown_refreshed = -UNKNOWN_TOOL_REFRESH  # when an unknown tool last made us re-list

    # tool list -------------------------------------------------------------
    def priced_tools(self) -> list[dict[str, Any]]:
        """The backend's tools with `_pricing`, rebuilt only when the backend's list changes."""
        source = self.backend.tools
        if source is not self._tools_source:
            prices = self.billing.prices
            priced = [{**t, "_pricing": prices.for_tool(t["name"]).public()} for t in source]
            self._priced_tools = [offer_tasks(t) for t in priced] if self.tasks is not None else priced
            self._tool_names = frozenset(t["name"] for t in source)
            self._tools_source = source
            self.billing.metrics.set_known_tools(sorted(self._tool_names))
        return self._priced_tools

    def reconfigure(self, free_methods: list[str]) -> None:
        """A hot reload (admin/reload.py): new free methods, and `_pricing` rebuilt from the new prices."""
        self.free_methods = frozenset(free_methods) - {"tools/call"}
        self._tools_source = None

    def tools_for(self, raw_key: str | None) -> list[dict[str, Any]]:
        """`tools/list` as this caller may see it: a key's denied tools never appear, nor those outside
        its token's tools, and prices are the key's own (group override, plan multiplier)."""
        tools = self.priced_tools()
        key, token = self.billing.identify(raw_key)
        if key is None:
            return tools
        policy = self.billing.policy_for(key)
        allowed, denied = policy.allowed_tools, policy.denied_tools
        narrowed = token.tools if isinstance(token, Credential) else None
        visible = []
        for tool in tools:
            name = tool["name"]
            if (allowed and name not in allowed) or name in denied or (narrowed is not None and name not in narrowed):
                continue
            pricing = tool["_pricing"]
            own = policy.price(name, pricing["creditsPerCall"])
            visible.append(
                tool if own == pricing["creditsPerCall"] else {**tool, "_pricing": {**pricing, "creditsPerCall": own}}
            )
        return visible

    def tool_known(self, name: str) -> bool:
        self.priced_tools()
        return not self._tool_names or name in self._tool_names

    async def known_after_refresh(self, tool: str) -> bool:
        """An unknown tool may be one the server added without saying so (or one a 2026-07-28-only
        server, whose list changes are not followed, added): look again, at most every
        UNKNOWN_TOOL_REFRESH seconds, so unknown names cannot make the gateway flood the server."""
        now = time.monotonic()
        if not self.backend.ready or now - self._unknown_refreshed < UNKNOWN_TOOL_REFRESH:
            return False
        self._unknown_refreshed = now
        try:
            await self.backend.refresh_tools(min(self.tool_timeout, 30.0))
        except BackendError as exc:
            log.debug("tool list refresh for %r failed: %s", tool[:100], exc)
            return False
        return self.tool_known(tool)

    def describe_key(self, ctx: CallContext) -> None:
        """Fill the rate and credit headers for a request that did not touch the rate window."""
        key = ctx.key or self.billing.resolve(ctx.raw_key)
        if key is None:
            return
        ctx.credits = key.credits
        limit = self.billing.facts.rate_limit(key.key_hash, self.billing.prices.global_rate_limit)
        if limit:
            ctx.rate = self.billing.rate_window(key, limit, time.time())

    # dispatch --------------------------------------------------------------
    async def handle(self, message: Message, ctx: CallContext) -> Message | None:
        """The response to one message, or None for notifications and client responses."""
        method = message.get("method")
        if method is None:
            # A client's answer to a server request the relay passed it; one the relay did not
            # send (or sent to another session) must not reach the backend under an id it may use.
            if not await self.relay.client_answer(message, ctx.session_id):
                log.debug("client response to id %r dropped", message.get("id"))
            return None
        msg_id = message.get("id")
        params = message.get("params")
        if params is not None and jsonrpc.too_deep(params):  # before any charge (the backend could not send it)
            return None if "id" not in message else jsonrpc.error(msg_id, errors.INVALID_PARAMS, jsonrpc.TOO_DEEP)
        if "id" not in message:
            await self._forward_notification(method, params, ctx)
            return None
        if method == "tools/call":
            if self.x402 is not None and (payment := self.x402.payment_of(params, ctx)) is not None:
                return self._unstaged(msg_id, params, "an x402-paid call") or await self.x402.call(
                    msg_id, params, ctx, payment
                )
            if self.tasks is not None and params.__class__ is dict and "task" in params:  # mcp/task_calls.py
                return self._unstaged(msg_id, params, "a task") or await self.tasks.create(msg_id, params, ctx)
            if self.discovery is not None:
                return await self.discovery.tools_call(msg_id, params, ctx)
            return await self.tools_call(msg_id, params, ctx)
        if method == call_batch.METHOD:  # a PayGate extension: always gated, whatever freeMethods says
            calls = params.get("calls") if isinstance(params, dict) else None
            for call in calls if isinstance(calls, list) else ():
                if (refused := self._unstaged(msg_id, call, "part of a batch")) is not None:
                    return refused
            return await call_batch.call_batch(self, msg_id, params, ctx)
        if method == "server/discover":
            # Answered on the 2026-07-28 wire (modern_post.py). Here — a handshake-era version, or in
            # a session — the client falls back to `initialize`; the probe never reaches the backend.
            return jsonrpc.error(msg_id, errors.METHOD_NOT_FOUND, "Method not found: server/discover")
        if method in TASK_METHODS and self.tasks is not None:  # free, but a key's own tasks only
            return await self.tasks.handle(method, msg_id, params, ctx)
        if method not in self.free_methods:
            denial = self.billing.check_access(ctx.raw_key, ctx.client)
            if denial is not None:
                return denial_error(msg_id, denial.reason, denial.text, {})
        if method == "initialize":
            return jsonrpc.result(msg_id, initialize_result(self.backend.init_result, params, self.tasks is not None))
        if method == "ping":
            return jsonrpc.result(msg_id, {})
        if method == "tools/list":
            tools = self.discovery.tools() if self.discovery is not None else self.tools_for(ctx.raw_key)
            return jsonrpc.result(msg_id, {"tools": tools})
        reply, _ = await self.forward(msg_id, method, params, ctx)
        return reply

    async def forward(self, msg_id: Any, method: str, params: Any, ctx: CallContext) -> tuple[Message, bool]:
        """The backend's answer (or our error in its place), and whether the request may have
        reached the server (False only when it certainly did not)."""
        origin = ctx.origin
        if origin is not None:  # what the server sends while answering finds its way to this client
            params, progress_token = self.relay.begin(origin, params)
            in_context = current_origin.set(origin)
            origin.forwarding()
        try:
            traffic = self.traffic
            if method == "tools/call" and (traffic.sends_on or traffic.tool_timeouts):
                request = self._send_call(params, ctx)
            else:
                request = self.backend.request(method, params, self.tool_timeout)
            if ctx.session_id is None or not isinstance(msg_id, str | int):
                reply = await request
            else:  # the client may cancel it (notifications/cancelled)
                reply = await self.in_flight.run(ctx.session_id, msg_id, request)
            if origin is not None and asks_for_input(reply):  # a 2026-07-28 server asks first
                reply = await with_answers(self.relay, self.backend, (method, params), reply, origin, self.tool_timeout)
        except CancelledByClient:
            return ctx.cancelled_by_client(msg_id), True
        except ClientCannotAnswer as exc:
            return jsonrpc.error(msg_id, errors.INTERNAL_ERROR, str(exc)), True
        except asyncio.CancelledError:
            if origin is None or not origin.disconnected:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # our own doing (origin.py)
            return jsonrpc.error(msg_id, errors.REQUEST_CANCELLED, "The client disconnected"), True
        except BackendTimeout as exc:
            return jsonrpc.error(msg_id, errors.TOOL_TIMEOUT, str(exc)), True
        except BackendUnavailable as exc:
            return jsonrpc.error(msg_id, errors.BACKEND_UNAVAILABLE, f"Backend unavailable: {exc}"), exc.delivered
        except Exception:  # the safety net: never an HTTP 500 for a charged call, and never a charge kept
            log.exception("%s (request %s) failed in the gateway", method, ctx.request_id)
            return jsonrpc.error(msg_id, errors.INTERNAL_ERROR, "Internal error; the call was not charged"), False
        finally:
            if origin is not None:
                origin.forwarded()
                current_origin.reset(in_context)
                self.relay.end(origin, progress_token)
        reply["id"] = msg_id  # the backend saw our id; the client gets its own back
        return reply, True

    def _send_call(self, params: Any, ctx: CallContext) -> Awaitable[Message]:
        """A tools/call's request upstream through the traffic controls' send stages, with its own timeout."""
        tool = params.get("name") if isinstance(params, dict) else None
        timeout = self.tool_timeout
        if isinstance(tool, str):
            timeout = self.traffic.tool_timeouts.get(tool, timeout)
        request = Upstream("tools/call", params, timeout, tool, ctx)
        if not self.traffic.sends_on:
            return self._send_upstream(request)
        return self.traffic.send(request)

    async def _send_upstream(self, request: Upstream) -> Message:
        return await self.backend.request(request.method, request.params, request.timeout)

    async def _forward_notification(self, method: str, params: Any, ctx: CallContext) -> None:
        # initialized: our upstream session already is; not a notification: a request without an id, never run
        if method in ("notifications/initialized", "initialized") or not jsonrpc.is_notification_method(method):
            return
        if method == "notifications/cancelled":
            # Never passed on as-is: the id is the client's, upstream ids are the gateway's. The
            # client's own call is cancelled instead, and its backend tells the server (cancellation.py).
            if ctx.session_id is not None and isinstance(params, dict):
                self.in_flight.cancel(ctx.session_id, params.get("requestId"))
            return
        try:
            await self.backend.notify(method, params)
        except BackendUnavailable as exc:
            log.debug("notification %s dropped: %s", method, exc)

    def _unstaged(self, msg_id: Any, params: Any, how: str) -> Message | None:
        return None if self.staged_only is None else unstaged(msg_id, params, how, self.staged_only)

    # the gated, charged path -----------------------------------------------
    async def tools_call(self, msg_id: Any, params: Any, ctx: CallContext) -> Message:
        if self.traffic.calls_on and params.__class__ is dict and isinstance(params.get("name"), str):
            return await self.traffic.run_call(ToolCall(msg_id, params["name"], params, ctx))
        return await self.gated_call(msg_id, params, ctx)

    async def _gated_call(self, call: ToolCall) -> Message:
        return await self.gated_call(call.msg_id, call.params, call.ctx, call.notes)

    async def gated_call(
        self, msg_id: Any, params: Any, ctx: CallContext, notes: dict[str, Any] | None = None
    ) -> Message:
        """Gate, charge, forward and settle one tools/call (inside the traffic controls' call stages, whose
        `notes` learn what an admitted call cost in the end: a call refused before any charge has none)."""
        admitted = await self.admit_call(msg_id, params, ctx, "tools/call")
        if not isinstance(admitted, tuple):
            return admitted
        decision, started = admitted
        reply, delivered = await self.forward(msg_id, "tools/call", params, ctx)
        if notes is not None and (withhold := notes.get("withhold")) is not None and (instead := withhold(reply)):
            reply, delivered = instead, False  # a result a guardrail withholds (content/guardrails.py): refunded
        credits = self.settle(decision, reply, ctx, delivered, started)
        if notes is not None:
            notes["credits"] = credits
        return reply

    async def admit_call(
        self,
        msg_id: Any,
        params: Any,
        ctx: CallContext,
        what: str,
        precheck: Callable[[], Message | None] | None = None,
    ) -> tuple[Admitted, float] | Message:
        """A tools/call's checks and charge (shared with task creation, mcp/task_calls.py): the answer to
        send instead, or the admitted call, its charge on disk, and when it started."""
        if not isinstance(params, dict) or not isinstance(params.get("name"), str):
            return jsonrpc.error(msg_id, errors.INVALID_PARAMS, "tools/call needs params.name (a string)")
        tool: str = params["name"]
        if not isinstance(params.get("arguments", {}), dict):
            return jsonrpc.error(msg_id, errors.INVALID_PARAMS, "tools/call params.arguments must be an object")
        if not self.tool_known(tool) and not await self.known_after_refresh(tool):
            return unknown_tool(msg_id, tool)
        if not self.backend.ready:
            return jsonrpc.error(msg_id, errors.BACKEND_UNAVAILABLE, "Backend unavailable: not ready")
        if precheck is not None and (early := precheck()) is not None:
            return early
        arguments = params.get("arguments")
        sized = arguments and self.billing.prices.for_tool(tool).credits_per_kb_input
        input_bytes = len(orjson.dumps(arguments)) if sized else 0  # (never too deep for orjson: see handle)
        price_set: int | None = None
        if self.plugins is not None:  # a plugin may refuse (nothing charged) or set the price
            said = await self.plugins(msg_id, tool, arguments, ctx, input_bytes)
            if isinstance(said, dict):
                return said
            price_set = said
        started = time.perf_counter()
        decision = self.billing.admit(ctx.raw_key, tool, input_bytes, ctx.request_id, ctx.client, price_set)
        ctx.rate = decision.rate
        if decision.key is not None:
            ctx.key = decision.key
            ctx.credits = decision.key.credits
        if isinstance(decision, Refused):
            self.publish_deny(decision, ctx, started)
            if decision.denial.retry_after is not None:
                ctx.add_header(b"retry-after", str(decision.denial.retry_after).encode())
            x402 = self.x402  # no key or too few credits: this call may pay for itself (mcp/x402_calls.py)
            if x402 is not None and what == "tools/call" and (ask := x402.instead_of(msg_id, decision, params)):
                return ask
            return refusal(msg_id, decision)
        if decision.committed is not None:  # the charge is on disk before the backend does any work
            refused = partial(self.publish_store_refusal, decision, ctx, started)
            unrecorded = await recorded(msg_id, decision.committed, decision.key, ctx, f"{what} {tool}", refused)
            if unrecorded is not None:
                return unrecorded
        return decision, started

    def settle(self, admitted: Admitted, reply: Message, ctx: CallContext, delivered: bool, started: float) -> int:
        """Settle a forwarded call and publish its `gate.allow`; the credits it cost in the end."""
        failed = jsonrpc.is_failure(reply)
        price = admitted.price
        output_bytes = len(orjson.dumps(reply.get("result"))) if price.credits_per_kb_output else 0
        settlement = self.billing.settle(admitted, failed, output_bytes, delivered=delivered)
        ctx.surcharge = settlement.surcharge
        key = admitted.key
        if key is not None:
            ctx.credits = key.credits
        if admitted.shadow_reason is not None and isinstance(reply.get("result"), dict):
            reply["result"].setdefault("_meta", {})["paygate"] = {"shadow": admitted.shadow_reason}
        return self.gate_events.allowed(admitted, settlement, failed, ctx, started)
