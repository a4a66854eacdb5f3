"""Client cancellation: a client's `notifications/cancelled` stops its own forwarded request.

Upstream, every backend speaks with ids of its own, so the id a client names means nothing to the
server, and passed on as-is it could cancel another client's call. Instead each request a client
forwards within a session is registered under (session id, the client's id) while its task awaits
the backend; the client's cancellation cancels that task there, and the backend, seeing its request
cancelled, sends the server `notifications/cancelled` with the id the server knows
(backends/stdio.py, backends/http.py). The request's own task is cancelled, not a task made for
the purpose: a task per call would cost its creation and two more passes of the event loop on
every forwarded request (bench/README.md, issue 13). The registration spans exactly the `await`
of the backend's answer, so a cancellation can land nowhere else.
Requests without a session cannot be cancelled this way: nothing ties two of their POSTs together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")
MAX_PER_SESSION = 1_000  # a client holding more in-flight requests than this cannot register more


class CancelledByClient(Exception):
    """The client cancelled this request (notifications/cancelled)."""


class _Call:
    __slots__ = ("by_client", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.by_client = False


class InFlight:
    def __init__(self) -> None:
        self._calls: dict[tuple[str, Any], _Call] = {}
        self._per_session: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._calls)

    async def run(self, session_id: str, client_id: Any, work: Awaitable[T]) -> T:
        """Await `work` so that the client may cancel it; CancelledByClient if it did."""
        key = (session_id, client_id)
        task = asyncio.current_task()
        if task is None or key in self._calls or self._per_session.get(session_id, 0) >= MAX_PER_SESSION:
            return await work  # a duplicate id (a client bug) or too many: not cancellable, still served
        call = self._calls[key] = _Call(task)
        self._per_session[session_id] = self._per_session.get(session_id, 0) + 1
        try:
            return await work
        except asyncio.CancelledError:
            if call.by_client and task.uncancel() == 0:
                raise CancelledByClient() from None  # only the client's cancellation: not the gateway stopping
            raise
        finally:
            del self._calls[key]
            left = self._per_session[session_id] - 1
            if left:
                self._per_session[session_id] = left
            else:
                del self._per_session[session_id]

    def cancel(self, session_id: str, client_id: Any) -> bool:
        """Cancel the client's own in-flight request `client_id`; False when there is none."""
        if not isinstance(client_id, str | int) or isinstance(client_id, bool):
            return False
        call = self._calls.get((session_id, client_id))
        if call is None or call.by_client:
            return False
        call.by_client = True
        call.task.cancel()
        return True
