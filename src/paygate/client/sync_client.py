"""`PayGateClient`: the async client run on a private event loop in its own thread, for code that is
not async. One thread and loop per client, from `with` to its end; every method blocks until done."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from mcp import Client
from mcp.types import CallToolResult

from paygate.client.asyncio_client import AsyncPayGateClient, PaymentHook, TokenSource
from paygate.client.models import Balance, CheckoutSession, PricedTool, Pricing

T = TypeVar("T")


class PayGateClient:
    """The blocking twin of `AsyncPayGateClient` (same arguments, same methods); use it in `with`.

    The SDK's connection lives in one task of the private loop from enter to exit (its task groups must
    be left by the task that entered them); each method call is another task on that loop. A plain
    `on_payment_required` function runs in a worker thread, so it may block and may call this client.
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
        self.aio = AsyncPayGateClient(
            url,
            api_key=api_key,
            token=token,
            on_payment_required=on_payment_required,
            timeout=timeout,
            mode=mode,
            headers=headers,
        )
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closing: asyncio.Event | None = None
        self._holder: concurrent.futures.Future[None] | None = None

    def __enter__(self) -> Self:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="paygate-client", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        connected: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._holder = asyncio.run_coroutine_threadsafe(self._hold(connected), loop)
        try:
            connected.result()
        except BaseException:
            self._stop_loop()
            raise
        return self

    async def _hold(self, connected: concurrent.futures.Future[None]) -> None:
        """Enter the async client, wait for `__exit__`, leave it: all in this one task."""
        self._closing = asyncio.Event()
        try:
            async with self.aio:
                connected.set_result(None)
                await self._closing.wait()
        except BaseException as exc:
            if not connected.done():
                connected.set_exception(exc)
                return
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        loop, closing, holder = self._loop, self._closing, self._holder
        if loop is None or closing is None or holder is None:
            return
        try:
            loop.call_soon_threadsafe(closing.set)
            holder.result(timeout=self._timeout)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = self._closing = self._holder = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("use the client inside `with`")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    # --- the async client's methods, blocking -----------------------------------------------------
    @property
    def credits_remaining(self) -> int | None:
        return self.aio.credits_remaining

    @property
    def mcp(self) -> Client:
        """The SDK's `Client` (async: its coroutines must run on this client's loop)."""
        return self.aio.mcp

    def list_tools(self) -> list[PricedTool]:
        return self._run(self.aio.list_tools())

    def call_tool(
        self, name: str, arguments: Mapping[str, Any] | None = None, *, meta: Mapping[str, Any] | None = None
    ) -> CallToolResult:
        return self._run(self.aio.call_tool(name, arguments, meta=meta))

    def balance(self) -> Balance:
        return self._run(self.aio.balance())

    def pricing(self) -> dict[str, Pricing]:
        return self._run(self.aio.pricing())

    def checkout(
        self, package_id: str, *, success_url: str | None = None, cancel_url: str | None = None
    ) -> CheckoutSession:
        return self._run(self.aio.checkout(package_id, success_url=success_url, cancel_url=cancel_url))
