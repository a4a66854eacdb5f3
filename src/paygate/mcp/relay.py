"""Server-to-client traffic through a shared backend session, each message to the client it is for.

One upstream session serves every client, so what the server sends back must be traced:

- `notifications/progress` by its progress token: a client's token is swapped for one of ours on
  the way up (two clients may both use `1`), and swapped back on the way down. Exact.
- Anything else the server sends while answering a request (a log line, a sampling, elicitation or
  roots request) goes to that request's origin (origin.py). Streamable HTTP backends tell us which
  request that is: the message arrives on its SSE stream. A stdio server cannot say; the message
  goes to the only client with requests in flight, or to the only connected client; with several,
  a notification is dropped and a request is refused, rather than shown to the wrong client.
- List changes concern everyone and reach every open stream.

A server request is relayed under an id of ours, unguessable and single-use; the client's answer
is accepted only from the session it was sent to, and reaches the backend under the server's id.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from paygate.mcp.backends.base import Backend, BackendError
from paygate.mcp.backends.router import RouterBackend
from paygate.mcp.jsonrpc import Message
from paygate.mcp.origin import Origin, current_origin
from paygate.mcp.sessions import SessionManager

log = logging.getLogger("paygate.mcp.relay")

BROADCAST = frozenset(
    {
        "notifications/tools/list_changed",
        "notifications/resources/list_changed",
        "notifications/prompts/list_changed",
        "notifications/resources/updated",
    }
)
CAPABILITY_OF = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
MAX_PENDING = 10_000
WATCH_AFTER = 0.05  # seconds a forwarded call runs before it watches for its client going away
NO_ROUTE = -32603
NOT_SUPPORTED = -32601


@dataclass(slots=True)
class _Pending:
    """A server request relayed to a client, waiting for its answer: for the backend under its id,
    or (a 2026-07-28 backend's `input_required` question) for a future the dispatcher awaits."""

    origin: Origin
    backend: Backend | None
    upstream_id: Any
    expires: float
    answer: asyncio.Future[Message] | None = None


class ClientCannotAnswer(Exception):
    """A 2026-07-28 backend's question could not be put to the client, or it answered with an error."""


class Relay:
    def __init__(self, sessions: SessionManager, answer_seconds: float) -> None:
        self.sessions = sessions
        self.answer_seconds = answer_seconds
        self._active: dict[Origin, int] = {}  # origins with forwarded requests in flight
        self._tokens: dict[str, tuple[Origin, Any]] = {}  # our progress token → origin, client's token
        self._pending: dict[str, _Pending] = {}
        self._token_prefix = f"pg-{secrets.token_hex(4)}-"
        self._counter = itertools.count(1)
        self._answering: set[asyncio.Task[None]] = set()  # answers to the server on their way
        self._watch_timer: asyncio.TimerHandle | None = None

    def attach(self, backend: Backend) -> None:
        """Listen to a backend; each of a router's separately, so answers go back to the one that asked."""
        targets = backend.backends.values() if isinstance(backend, RouterBackend) else (backend,)
        for target in targets:
            target.add_listener(functools.partial(self._from, target))

    def _from(self, backend: Backend, message: Message) -> None:
        self.on_server_message(message, backend)

    # around each forwarded request -------------------------------------------
    def begin(self, origin: Origin, params: Any) -> tuple[Any, str | None]:
        """Note a request's origin; its params with our progress token in place of the client's."""
        count = self._active.get(origin)
        if count is None:
            origin.since = time.monotonic()
            self._active[origin] = 1
            if self._watch_timer is None:
                self._watch_timer = asyncio.get_running_loop().call_later(WATCH_AFTER, self._watch_long_calls)
        else:
            self._active[origin] = count + 1
        if isinstance(params, dict):
            meta = params.get("_meta")
            if isinstance(meta, dict) and "progressToken" in meta:
                ours = self._token_prefix + str(next(self._counter))
                self._tokens[ours] = (origin, meta["progressToken"])
                return {**params, "_meta": {**meta, "progressToken": ours}}, ours
        return params, None

    def retoken(self, origin: Origin, client_token: Any) -> None:
        """A 2026-07-28 retry carries the call on under a progress token of its own."""
        for ours, (owner, _) in list(self._tokens.items()):
            if owner is origin:
                self._tokens[ours] = (origin, client_token)

    def end(self, origin: Origin, token: str | None) -> None:
        left = self._active[origin] - 1
        if left:
            self._active[origin] = left
        else:
            del self._active[origin]
        if token is not None:
            del self._tokens[token]  # progress ends with the answer

    def _watch_long_calls(self) -> None:
        """Every WATCH_AFTER while calls are in flight: those that have run that long start
        watching for their client to go away (origin.py). One timer for all calls, not one each."""
        edge = time.monotonic() - WATCH_AFTER
        for origin in self._active:
            if origin.since <= edge:
                origin.watch()
        self._watch_timer = (
            asyncio.get_running_loop().call_later(WATCH_AFTER, self._watch_long_calls) if self._active else None
        )

    # server → client -----------------------------------------------------------
    def on_server_message(self, message: Message, backend: Backend) -> None:
        if "id" in message:
            self._server_request(message, backend)
            return
        method = message.get("method")
        params = message.get("params")
        if method == "notifications/progress" and isinstance(params, dict):
            token = params.get("progressToken")
            entry = self._tokens.get(token) if isinstance(token, str) else None
            if entry is not None:  # a token we did not hand out is no client's
                self.deliver(entry[0], {**message, "params": {**params, "progressToken": entry[1]}})
            return
        if method in BROADCAST:
            self.sessions.broadcast(message)
            return
        if method == "notifications/cancelled" and isinstance(params, dict):
            self._server_cancelled(params, backend)
            return
        origin = current_origin.get() or self._sole_origin()
        if origin is None or not self.deliver(origin, message):
            log.debug("%s from the backend reaches no client", method)

    def _server_request(self, message: Message, backend: Backend) -> None:
        method, upstream_id = message.get("method"), message["id"]
        if method == "ping":
            self._answer(backend, {"jsonrpc": "2.0", "id": upstream_id, "result": {}})
            return
        origin = current_origin.get() or self._sole_origin()
        if origin is None:
            self._refuse(backend, upstream_id, NO_ROUTE, f"PayGate cannot tell which client {method} is for")
            return
        missing = _missing_capability(origin, method, message.get("params"))
        if missing is not None:
            self._refuse(backend, upstream_id, NOT_SUPPORTED, f"The client does not support {missing}")
            return
        self._sweep()
        if len(self._pending) >= MAX_PENDING:
            self._refuse(backend, upstream_id, NO_ROUTE, "PayGate has too many server requests waiting")
            return
        client_id = "pgs-" + secrets.token_urlsafe(12)
        self._pending[client_id] = _Pending(origin, backend, upstream_id, time.monotonic() + self.answer_seconds)
        if not self.deliver(origin, {**message, "id": client_id}):
            del self._pending[client_id]
            self._refuse(backend, upstream_id, NO_ROUTE, "The client has no open stream to receive it")

    async def ask(self, origin: Origin, questions: Any, timeout: float) -> dict[str, Any]:
        """A 2026-07-28 backend's `input_required`: put each question to the client, as a server
        request (or, to a 2026-07-28 client, as an input_required of ours); its answers by key."""
        if not isinstance(questions, dict) or not questions:
            raise ClientCannotAnswer("The server asked for input without saying what")
        loop = asyncio.get_running_loop()
        waiting: dict[str, tuple[str, asyncio.Future[Message]]] = {}
        try:
            for key, question in questions.items():
                method = question.get("method") if isinstance(question, dict) else None
                params = question.get("params") if isinstance(question, dict) else None
                missing = _missing_capability(origin, method, params)
                if missing is not None or not isinstance(method, str):
                    raise ClientCannotAnswer(f"The client does not support {missing or method}")
                client_id = "pgs-" + secrets.token_urlsafe(12)
                future: asyncio.Future[Message] = loop.create_future()
                self._pending[client_id] = _Pending(origin, None, None, time.monotonic() + timeout, future)
                waiting[str(key)] = (client_id, future)
                if not self.deliver(
                    origin,
                    {
                        "jsonrpc": "2.0",
                        "id": client_id,
                        "method": method,
                        "params": params if isinstance(params, dict) else {},
                    },
                ):
                    raise ClientCannotAnswer("The client has no open stream to receive the server's question")
            async with asyncio.timeout(timeout):
                answers = {key: await future for key, (_, future) in waiting.items()}
        finally:
            for client_id, _ in waiting.values():
                self._pending.pop(client_id, None)
        for answer in answers.values():
            if "error" in answer:
                raise ClientCannotAnswer(f"The client answered with an error: {answer['error']}")
        return {key: answer.get("result") for key, answer in answers.items()}

    def _server_cancelled(self, params: dict[str, Any], backend: Backend) -> None:
        """The server gave up on one of its own requests: tell the client, under the id it knows."""
        for client_id, pending in list(self._pending.items()):
            if pending.backend is backend and pending.upstream_id == params.get("requestId"):
                del self._pending[client_id]
                self.deliver(
                    pending.origin,
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/cancelled",
                        "params": {**params, "requestId": client_id},
                    },
                )
                return

    def deliver(self, origin: Origin, message: Message) -> bool:
        """On the origin's own POST stream while it is open, else on its session's GET stream.
        A 2026-07-28 client is asked its questions in an `input_required` answer instead."""
        if origin.exchange is not None and ("id" in message or origin.channel is None):
            origin.exchange.ask(message)  # a question; or a note between two POSTs, for the next one
            return True
        if origin.channel is not None and origin.channel.push(message):
            return True
        session = origin.session
        if session is None or not self.sessions.holds(session):
            return False
        if session.streams or (session.listened and "id" not in message):
            session.push(message)  # a notification between two GET streams is kept for the resume
            return True
        return False

    def _sole_origin(self) -> Origin | None:
        """For a message that names no request: the only client it can be for, if there is one."""
        if self._active:
            origins = list(self._active)
            latest = origins[-1]
            if len(origins) == 1 or (latest.session is not None and all(o.session is latest.session for o in origins)):
                return latest
            return None
        only = self.sessions.only_listening()
        return Origin(only, None, None) if only is not None else None

    # client → server -----------------------------------------------------------
    async def client_answer(self, message: Message, session_id: str | None) -> bool:
        """Pass a client's answer to a relayed server request on to its backend."""
        client_id = message.get("id")
        pending = self._pending.get(client_id) if isinstance(client_id, str) else None
        if pending is None or pending.origin.session_id != session_id:
            return False
        del self._pending[client_id]  # type: ignore[arg-type]
        if pending.answer is not None:
            if not pending.answer.done():
                pending.answer.set_result(message)
            return True
        assert pending.backend is not None
        answer: Message = {"jsonrpc": "2.0", "id": pending.upstream_id}
        if "error" in message:
            answer["error"] = message["error"]
        else:
            answer["result"] = message.get("result")
        try:
            await pending.backend.respond(answer)
        except BackendError as exc:
            log.debug("client answer not delivered: %s", exc)
        return True

    def _sweep(self) -> None:
        now = time.monotonic()
        for client_id in [c for c, p in self._pending.items() if p.expires < now]:
            del self._pending[client_id]

    def _refuse(self, backend: Backend, upstream_id: Any, code: int, text: str) -> None:
        log.debug("server request %r refused: %s", upstream_id, text)
        self._answer(backend, {"jsonrpc": "2.0", "id": upstream_id, "error": {"code": code, "message": text}})

    def _answer(self, backend: Backend, answer: Message) -> None:
        task = asyncio.get_running_loop().create_task(_respond_quietly(backend, answer))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)


def _missing_capability(origin: Origin, method: Any, params: Any) -> str | None:
    """The capability a client lacks for this server request, by what it declared at initialize."""
    capability = CAPABILITY_OF.get(method) if isinstance(method, str) else None
    declared = origin.capabilities
    if capability is None or declared is None:
        return None  # nothing to check, or a client we never saw initialize: let it answer
    if capability not in declared:
        return capability
    if capability == "elicitation" and isinstance(params, dict) and params.get("mode") == "url":
        modes = declared["elicitation"]
        if not (isinstance(modes, dict) and "url" in modes):
            return "URL elicitation"
    return None


async def _respond_quietly(backend: Backend, answer: Message) -> None:
    try:
        await backend.respond(answer)
    except BackendError as exc:
        log.debug("answer to the server not delivered: %s", exc)
