"""Client cancellation: a client's `notifications/cancelled` stops its own forwarded request.

Upstream, every backend speaks with ids of its own, so the id a client names means nothing to the
server, and passed on as-is it could cancel another client's call. Instead each request a client
forwards within a session runs as a task registered under (session id, the client's id); the
client's cancellation cancels that task, and the backend, seeing its request cancelled, sends the
server `notifications/cancelled` with the id the server knows (backends/stdio.py, backends/http.py).
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


class InFlight:
    def __init__(self) -> None:
        self._tasks: dict[tuple[str, Any], asyncio.Task[Any]] = {}
        self._per_session: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    async def run(self, session_id: str, client_id: Any, work: Awaitable[T]) -> T:
        """Await `work` as a task the client may cancel; CancelledByClient if it did."""
        key = (session_id, client_id)
        if key in self._tasks or self._per_session.get(session_id, 0) >= MAX_PER_SESSION:
            return await work  # a duplicate id (a client bug) or too many: not cancellable, still served
        task = asyncio.ensure_future(work)
        self._tasks[key] = task
        self._per_session[session_id] = self._per_session.get(session_id, 0) + 1
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                raise CancelledByClient() from None  # the task was cancelled by the client, not us
            raise
        finally:
            if not task.done():
                task.cancel()  # we were cancelled (the gateway stopping): the backend call ends too
            del self._tasks[key]
            left = self._per_session[session_id] - 1
            if left:
                self._per_session[session_id] = left
            else:
                del self._per_session[session_id]

    def cancel(self, session_id: str, client_id: Any) -> bool:
        """Cancel the client's own in-flight request `client_id`; False when there is none."""
        if not isinstance(client_id, str | int) or isinstance(client_id, bool):
            return False
        task = self._tasks.get((session_id, client_id))
        if task is None or task.done():
            return False
        task.cancel()
        return True
