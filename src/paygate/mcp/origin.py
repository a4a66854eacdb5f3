"""Where a forwarded request came from: one POST to /mcp, its client session, its answer channel.

Every backend speaks for many clients over one upstream session, so a message the server sends
back (progress, a log line, a sampling request) must be traced to the client whose request caused
it. The origin of the request being forwarded rides a context variable: a backend that learns of
a server message while reading the answer to that request (Streamable HTTP sends them on the
request's own SSE stream) finds the origin in the current context (relay.py).

An origin also notices when its client goes away mid-call. uvicorn does not cancel an app whose
client disconnected, so once a forwarded request has run long enough to matter (the relay's
`WATCH_AFTER`), a small task waits for `http.disconnect` and then cancels the forwarding task; the
dispatcher turns that into a cancellation of the backend call, and the charge follows the refund
policy. Not so for a POST answered as a stream within a session: its client may resume it with
`Last-Event-ID` (replay.py), so the call goes on and what it sends is kept. Short calls never get
a watcher: a timer per call would cost more than the rest of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from paygate.mcp.channel import PostChannel
from paygate.mcp.sessions import Session

if TYPE_CHECKING:
    from paygate.mcp.input_required import Exchange

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class Origin:
    __slots__ = (
        "_capabilities",
        "_forwarding",
        "_receive",
        "_task",
        "_watcher",
        "channel",
        "disconnected",
        "exchange",
        "session",
        "since",
    )

    def __init__(
        self,
        session: Session | None,
        channel: PostChannel | None,
        receive: Receive | None,
        capabilities: dict[str, Any] | None = None,
    ) -> None:
        self.session = session
        self.channel = channel
        self._capabilities = capabilities  # a sessionless (2026-07-28) client's, from its request
        self.exchange: Exchange | None = None  # a 2026-07-28 call: server questions go here
        self._receive = receive
        self._task: asyncio.Task[Any] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._forwarding = 0  # forwarded requests of this POST now awaiting their backend
        self.disconnected = False
        self.since = 0.0  # when its first forwarded request started (relay.py)

    @property
    def session_id(self) -> str | None:
        return self.session.id if self.session is not None else None

    @property
    def capabilities(self) -> dict[str, Any] | None:
        """What the client declared it can do (None: unknown)."""
        return self.session.capabilities if self.session is not None else self._capabilities

    # a 2026-07-28 call spans several POSTs (input_required.py) ---------------------
    def release(self) -> None:
        """Its POST is answered: nothing to stream to, nobody to watch, until the next one."""
        self.channel = None
        self._receive = None
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    def take_over(self, other: Origin) -> None:
        """A retry's POST carries the call on: its channel and its connection are now ours."""
        self.channel = other.channel
        self._receive = other._receive

    # disconnect watching ------------------------------------------------------
    def forwarding(self) -> None:
        """A forwarded request starts awaiting the backend (in the current task)."""
        self._forwarding += 1
        self._task = asyncio.current_task()

    def forwarded(self) -> None:
        """That request has its answer (or failed)."""
        self._forwarding -= 1
        if self._forwarding == 0:
            self._task = None
            if self._watcher is not None:
                self._watcher.cancel()
                self._watcher = None

    def watch(self) -> None:
        """Start waiting for the client to go away (the relay calls this once a call has run a while)."""
        if self._receive is not None and self._watcher is None and self._forwarding:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        if await self.gone() and self._forwarding and self._task is not None and not self._task.done():
            self._task.cancel()  # the dispatcher sees it while awaiting the backend (Dispatcher.forward)

    async def gone(self) -> bool:
        """Return once the client has gone away: whether its call should end. Also the watcher of a call
        that waits before it is forwarded (for a concurrency slot, traffic/concurrency.py)."""
        receive = self._receive
        if receive is None:  # nothing to watch: wait until cancelled
            await asyncio.Event().wait()
            return False
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnected = True
        channel = self.channel
        if channel is not None and channel.resumable:
            channel.detach()  # the client may come back for the rest (Last-Event-ID): the call goes on
            return False
        if channel is not None:
            channel.close()
        return True


current_origin: ContextVar[Origin | None] = ContextVar("paygate_origin", default=None)
