"""`AsyncPayGateClient`: the official `mcp` SDK client (Streamable HTTP) with PayGate's credentials,
prices, balance, typed denials and one pay-and-retry.

The SDK does the protocol (negotiation, sessions, `tools/list`, `tools/call`); this class configures the
HTTP client the SDK's transport uses and reads what the SDK does not surface:

* credentials: a request hook sets `X-API-Key` or `Authorization: Bearer` on every request, the bearer
  token asked of a callable each time when one is given (so an OAuth token can be refreshed);
* `X-Credits-Remaining`: a response hook keeps the last value the gateway sent (`credits_remaining`);
* `_pricing`: the SDK's `Tool` model drops it, so the same hook reads it from the raw JSON answer to
  `tools/list` (the body is read once; the SDK then reads it from httpx's cache). When the answer came
  as an SSE stream instead, the price falls back to `GET /pricing` (the default price, without the
  key's group or plan override).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Literal, Self

import anyio.to_thread
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from paygate.client.errors import AuthenticationError, InsufficientCredits, PayGateError, error_from
from paygate.client.models import Balance, CheckoutSession, PricedTool, Pricing

TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]]
# What the hook answers: True to retry the call as it was, a mapping to retry with it merged into the
# call's `_meta` (e.g. {"x402/payment": payload}), False or None to give up (the denial is raised).
PaymentDecision = bool | Mapping[str, Any] | None
PaymentHook = Callable[[PayGateError], Awaitable[PaymentDecision]] | Callable[[PayGateError], PaymentDecision]

DENY_META = "paygate/deny"  # where an x402-era denial carried as a tool result keeps the usual fields


class AsyncPayGateClient:
    """A client for agents calling a PayGate gateway; use it as an async context manager.

    `url` is the gateway's base URL (`http://127.0.0.1:3402`; a trailing `/mcp` is accepted). Give at
    most one credential: `api_key` (`pg_…`, sent as `X-API-Key`) or `token` (a scoped token `pgt_…`, an
    OAuth access token, or a callable returning a fresh one; sent as `Authorization: Bearer`). Without
    one, tools can be listed but calls are refused (`MissingApiKey`).
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        token: TokenSource | None = None,
        on_payment_required: PaymentHook | None = None,
        timeout: float = 30.0,
        mode: Literal["auto", "legacy"] = "auto",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if api_key is not None and token is not None:
            raise ValueError("give either api_key or token, not both")
        base = url.rstrip("/")
        self.base_url = base.removesuffix("/mcp")
        self._api_key = api_key
        self._token = token
        self.on_payment_required = on_payment_required
        self._timeout = timeout
        self._mode = mode
        self._headers = dict(headers or {})
        self._listed_prices: dict[str, Pricing] = {}
        self._stack: AsyncExitStack | None = None
        self._http: httpx2.AsyncClient | None = None
        self._mcp: Client | None = None
        self.credits_remaining: int | None = None
        """The balance the gateway last reported (`X-Credits-Remaining` of the last /mcp answer, or the
        last `balance()`); None until it said."""

    # --- lifecycle --------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=self._headers,
                    timeout=self._timeout,
                    event_hooks={"request": [self._authenticate], "response": [self._observe]},
                )
            )
            transport = streamable_http_client(f"{self.base_url}/mcp", http_client=http)
            self._mcp = await stack.enter_async_context(Client(transport, mode=self._mode))
            self._http = http
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack, self._mcp, self._http = self._stack, None, None, None
        if stack is None:
            return
        try:
            await stack.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # The SDK's task groups wrap an error raised in the `async with` body (a denial, say) in an
            # exception group; when that error is all there is, let it leave as itself.
            if exc is None or any(leaf is not exc for leaf in _leaves(group)):
                raise

    @property
    def mcp(self) -> Client:
        """The SDK's `Client` underneath, for anything this class does not wrap (resources, prompts)."""
        if self._mcp is None:
            raise RuntimeError("use the client inside `async with`")
        return self._mcp

    @property
    def http(self) -> httpx2.AsyncClient:
        if self._http is None:
            raise RuntimeError("use the client inside `async with`")
        return self._http

    # --- tools ------------------------------------------------------------------------------------
    async def list_tools(self) -> list[PricedTool]:
        """Every tool this credential may see, with its price (all pages)."""
        tools = []
        cursor: str | None = None
        while True:
            with _typed_errors():
                page = await self.mcp.list_tools(cursor=cursor, cache_mode="refresh")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        fallback: dict[str, Pricing] | None = None
        if any(t.name not in self._listed_prices for t in tools):
            fallback = await self.pricing()
        return [PricedTool(t, self._listed_prices.get(t.name) or (fallback or {}).get(t.name)) for t in tools]

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any] | None = None, *, meta: Mapping[str, Any] | None = None
    ) -> CallToolResult:
        """Call a tool. A denial is raised as its `PayGateError` subclass. On `InsufficientCredits` (or any
        denial carrying an x402 offer) with an `on_payment_required` hook, the hook runs once; if it says
        retry, the call is sent once more and whatever that answers (result or denial) is final: one
        logical call is never paid for twice."""
        extra = dict(meta or {})
        hook_ran = False
        while True:
            try:
                return await self._call_once(name, arguments, extra)
            except PayGateError as denied:
                payable = isinstance(denied, InsufficientCredits) or denied.payment_required is not None
                if self.on_payment_required is None or hook_ran or not payable:
                    raise
                hook_ran = True
                decision = await self._ask_hook(denied)
                if isinstance(decision, Mapping):
                    extra.update(decision)  # even an empty one means: retry
                elif decision is not True:
                    raise

    async def _call_once(
        self, name: str, arguments: Mapping[str, Any] | None, meta: Mapping[str, Any]
    ) -> CallToolResult:
        with _typed_errors():
            result = await self.mcp.call_tool(name, dict(arguments or {}), meta=dict(meta) or None)  # type: ignore[arg-type]
        deny = (result.meta or {}).get(DENY_META) if result.is_error else None
        if isinstance(deny, Mapping):  # x402 on: the payment request rides in a tool result
            code = 402
            message = f"Payment required ({deny.get('reason', 'x402')})"
            raise error_from(code, message, {**deny, "paymentRequired": result.structured_content})
        return result

    async def _ask_hook(self, denied: PayGateError) -> PaymentDecision:
        hook = self.on_payment_required
        assert hook is not None
        if inspect.iscoroutinefunction(hook):
            return await hook(denied)  # type: ignore[no-any-return]
        # A plain function may block (open a browser, wait for Checkout): keep it off the event loop.
        answer = await anyio.to_thread.run_sync(hook, denied)
        return await answer if inspect.isawaitable(answer) else answer

    # --- REST ---------------------------------------------------------------------------------------
    async def balance(self) -> Balance:
        """`GET /balance` for the API key (scoped and OAuth tokens are refused there: use
        `credits_remaining` with them). Updates `credits_remaining`."""
        resp = await self.http.get(f"{self.base_url}/balance")
        body = _json_or_error(resp)
        balance = Balance.from_json(body)
        self.credits_remaining = balance.credits
        return balance

    async def pricing(self) -> dict[str, Pricing]:
        """`GET /pricing` (public): every tool's default price, by name."""
        body = _json_or_error(await self.http.get(f"{self.base_url}/pricing"))
        return {t["name"]: Pricing.from_json(t) for t in body.get("tools", [])}

    async def checkout(
        self, package_id: str, *, success_url: str | None = None, cancel_url: str | None = None
    ) -> CheckoutSession:
        """`POST /stripe/checkout` for this API key: a Stripe Checkout session buying `package_id`'s
        credits; send the buyer to `url`. The credits arrive when Stripe tells the gateway it was paid."""
        body: dict[str, Any] = {"packageId": package_id}
        if success_url is not None:
            body["successUrl"] = success_url
        if cancel_url is not None:
            body["cancelUrl"] = cancel_url
        answer = _json_or_error(await self.http.post(f"{self.base_url}/stripe/checkout", json=body))
        return CheckoutSession(
            session_id=str(answer["sessionId"]),
            url=str(answer["url"]),
            package_id=str(answer["packageId"]),
            credits=int(answer["credits"]),
        )

    # --- the HTTP hooks ---------------------------------------------------------------------------
    async def _authenticate(self, request: httpx2.Request) -> None:
        if self._api_key is not None:
            request.headers["X-API-Key"] = self._api_key
        elif self._token is not None:
            token = self._token if isinstance(self._token, str) else self._token()
            if inspect.isawaitable(token):
                token = await token
            request.headers["Authorization"] = f"Bearer {token}"

    async def _observe(self, response: httpx2.Response) -> None:
        remaining = response.headers.get("x-credits-remaining")
        if remaining is not None and remaining.lstrip("-").isdigit():
            self.credits_remaining = int(remaining)
        request = response.request
        try:
            sent = request.content
        except httpx2.RequestNotRead:  # a streamed upload: not a JSON-RPC message of the SDK's
            return
        if (
            request.method == "POST"
            and response.status_code == 200
            and response.headers.get("content-type", "").startswith("application/json")
            and b'"tools/list"' in sent
        ):
            await response.aread()  # cached by httpx: the SDK reads the same bytes after us
            self._remember_prices(response.content)

    def _remember_prices(self, body: bytes) -> None:
        try:
            message = json.loads(body)
        except ValueError:
            return
        result = message.get("result") if isinstance(message, dict) else None
        for tool in (result or {}).get("tools", []) if isinstance(result, dict) else []:
            if isinstance(tool, dict) and isinstance(tool.get("_pricing"), dict) and isinstance(tool.get("name"), str):
                self._listed_prices[tool["name"]] = Pricing.from_json(tool["_pricing"])


class _typed_errors:
    """Turn the SDK's `MCPError` into the matching `PayGateError`."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, MCPError):
            raise error_from(exc.error.code, exc.error.message, exc.error.data) from exc


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for inner in group.exceptions:
        out.extend(_leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])
    return out


def _json_or_error(resp: httpx2.Response) -> dict[str, Any]:
    """A REST answer's JSON, or its refusal as a `PayGateError` whose `code` is the HTTP status."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code >= 400 or not isinstance(body, dict):
        message = body.get("error") if isinstance(body, dict) else None
        data: dict[str, Any] = {**(body if isinstance(body, dict) else {}), "httpStatus": resp.status_code}
        if resp.status_code == 401 and "reason" not in data:  # /balance: no key, or not an API key it knows
            raise AuthenticationError(401, str(message or resp.reason_phrase), data)
        raise error_from(resp.status_code, str(message or resp.reason_phrase), data)
    return body
