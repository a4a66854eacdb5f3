"""Server questions for a 2026-07-28 client: the "input required" round trips.

A modern client has no channel on which the server could ask it anything. So while its call runs
(in a task of its own), a question the backend sends (sampling, elicitation, roots — relayed under
ids of ours, relay.py) ends the client's POST early with an `input_required` result: the questions,
keyed by those ids, and a `requestState`. The backend call is held, still waiting for its answer.
The client retries the same request with `inputResponses` and that `requestState`; the answers go
to the backend, and the retry's POST carries on where the last one stopped — to the result, or to
the next questions.

The call was admitted and charged once, on the first POST; a retry resumes it and is never charged
again. A `requestState` is single-use, unguessable, bound to the caller's key and to the request it
came from, and expires: after `toolTimeoutSeconds`, or when the held call fails on its own (its
backend timed out). A held call that ends with a result meanwhile (its server stopped waiting)
keeps it for the retry. An expired call is cancelled, as if its client had gone, and the charge
follows the refund policy.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

from paygate.core import errors
from paygate.core.keys import hash_key
from paygate.mcp import jsonrpc
from paygate.mcp.backends.base import Backend
from paygate.mcp.jsonrpc import Message
from paygate.mcp.origin import Origin
from paygate.mcp.relay import ClientCannotAnswer, Relay

MAX_HELD = 10_000
MAX_NOTES = 256  # notifications kept for a client between two of its POSTs
MAX_INPUT_ROUNDS = 10  # input_required rounds a 2026-07-28 backend may ask for one request


def asks_for_input(reply: Message) -> bool:
    """A 2026-07-28 server's answer that is a question for the client, not the result."""
    result = reply.get("result")
    return isinstance(result, dict) and result.get("resultType") == "input_required"


async def with_answers(
    relay: Relay, backend: Backend, request: tuple[str, Any], reply: Message, origin: Origin, timeout: float
) -> Message:
    """A forwarded request's answer once the client has answered the server's questions: ask, retry with
    the answers (and the server's requestState), until a real result or MAX_INPUT_ROUNDS."""
    method, params = request
    for _ in range(MAX_INPUT_ROUNDS):
        if not asks_for_input(reply):
            return reply
        result = reply["result"]
        answers = await relay.ask(origin, result.get("inputRequests"), timeout)
        retry = {**(params if isinstance(params, dict) else {}), "inputResponses": answers}
        if result.get("requestState") is not None:
            retry["requestState"] = result["requestState"]
        reply = await backend.request(method, retry, timeout)
    raise ClientCannotAnswer(f"The server still wanted input after {MAX_INPUT_ROUNDS} rounds")


Handler = Callable[[], Coroutine[Any, Any, Message | None]]


class Exchange:
    """One modern request whose call runs on while its client answers the server's questions."""

    def __init__(self, exchanges: Exchanges, origin: Origin, caller: str, request: tuple[Any, Any]) -> None:
        self.exchanges = exchanges
        self.origin = origin
        self.caller = caller  # the key's hash ("" for none): only it may resume
        self.request = request  # (method, name): a retry must be the same request
        self.questions: asyncio.Queue[Message] = asyncio.Queue()
        self.asked: dict[str, Message] = {}  # relayed, not answered yet
        self.notes: list[Message] = []  # notifications that came while no POST was open
        self.task: asyncio.Task[Message | None] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    def ask(self, message: Message) -> None:
        """The relay has a server request for this client (under our id), or a notification while
        no POST of the client's is open (kept for the next one)."""
        if "id" in message:
            self.questions.put_nowait(message)
        elif len(self.notes) < MAX_NOTES:
            self.notes.append(message)

    def carry_on(self, origin: Origin, progress_token: Any) -> None:
        """A retry's POST takes the call over: its progress token, then what it missed."""
        self.origin.take_over(origin)
        if progress_token is not None:
            self.exchanges.relay.retoken(self.origin, progress_token)
        notes, self.notes = self.notes, []
        for note in notes:
            params = note.get("params")
            if (
                progress_token is not None
                and note.get("method") == "notifications/progress"
                and isinstance(params, dict)
            ):
                note = {**note, "params": {**params, "progressToken": progress_token}}
            self.exchanges.relay.deliver(self.origin, note)

    async def next_answer(self, msg_id: Any) -> Message:
        """The call's result, or `input_required` with the questions it is waiting on."""
        assert self.task is not None
        if self.task.done():  # it ended meanwhile: unanswered questions are moot
            return self._result(msg_id)
        if not self.asked:
            getter = asyncio.ensure_future(self.questions.get())
            done, _ = await asyncio.wait({self.task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if self.task in done:
                getter.cancel()
                return self._result(msg_id)
            self._take(getter.result())
        while not self.questions.empty():
            self._take(self.questions.get_nowait())
        token = self.exchanges.hold(self)
        return jsonrpc.result(
            msg_id,
            {
                "resultType": "input_required",
                "requestState": token,
                "inputRequests": {
                    qid: {"method": q["method"], "params": q.get("params") or {}} for qid, q in self.asked.items()
                },
            },
        )

    def _take(self, question: Message) -> None:
        self.asked[question["id"]] = question

    def _result(self, msg_id: Any) -> Message:
        assert self.task is not None
        try:
            reply = self.task.result()
        except Exception:  # the dispatcher answers errors itself; this is a bug, not the client's fault
            reply = jsonrpc.error(msg_id, errors.INTERNAL_ERROR, "Internal error")
        if reply is None:
            reply = jsonrpc.result(msg_id, {})
        return {**reply, "id": msg_id}

    def expire_after(self, seconds: float) -> None:
        self._expiry = asyncio.get_running_loop().call_later(seconds, self.expire)

    def keep(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def expire(self) -> None:
        """Nobody came back: end the held call as a client that went away would."""
        self.exchanges.forget(self)
        self.origin.disconnected = True
        if self.task is not None and not self.task.done():
            self.task.cancel()


class Exchanges:
    def __init__(self, relay: Relay, hold_seconds: float) -> None:
        self.relay = relay
        self.hold_seconds = hold_seconds
        self._held: dict[str, Exchange] = {}

    def __len__(self) -> int:
        return len(self._held)

    async def start(self, message: Message, caller_key: str | None, origin: Origin, handle: Handler) -> Message:
        """Run a modern request; its answer, or the first questions the server asks."""
        exchange = Exchange(self, origin, _caller(caller_key), _request_of(message))
        origin.exchange = exchange
        exchange.task = asyncio.get_running_loop().create_task(handle())
        return await self._round(exchange, message.get("id"))

    async def resume(self, message: Message, caller_key: str | None, origin: Origin) -> Message:
        """A retry with `requestState` and `inputResponses`: answer the server, carry on."""
        params = message["params"]
        token = params.get("requestState")
        exchange = self._held.get(token) if isinstance(token, str) else None
        if (
            exchange is None
            or not hmac.compare_digest(exchange.caller, _caller(caller_key))
            or exchange.request != _request_of(message)
        ):
            return jsonrpc.error(message.get("id"), errors.INVALID_PARAMS, "Unknown or expired requestState")
        del self._held[token]
        exchange.keep()
        meta = params.get("_meta")
        exchange.carry_on(origin, meta.get("progressToken") if isinstance(meta, dict) else None)
        responses = params.get("inputResponses")
        for qid, response in responses.items() if isinstance(responses, dict) else ():
            if exchange.asked.pop(qid, None) is not None:
                await self.relay.client_answer({"jsonrpc": "2.0", "id": qid, "result": response}, None)
        return await self._round(exchange, message.get("id"))

    async def _round(self, exchange: Exchange, msg_id: Any) -> Message:
        # A client that leaves mid-round has the call's own task cancelled (origin.py); its -32800
        # result ends this wait like any other.
        try:
            return await exchange.next_answer(msg_id)
        finally:
            exchange.origin.release()  # between POSTs, nothing to stream to and nobody to watch

    def hold(self, exchange: Exchange) -> str:
        if len(self._held) >= MAX_HELD:
            oldest = next(iter(self._held.values()))
            oldest.expire()
        token = secrets.token_urlsafe(24)
        self._held[token] = exchange
        exchange.expire_after(self.hold_seconds)
        assert exchange.task is not None
        # A call that ends while nobody waits for it (its backend timed out) is over for the client too.
        exchange.task.add_done_callback(lambda _: self._ended(token, exchange))
        return token

    def _ended(self, token: str, exchange: Exchange) -> None:
        """The held call ended while its client was away. With a result (the server stopped waiting
        for the questions still out, e.g. a stdio server's `roots/list` put to this client), the
        client's retry gets that result, until the hold expires; with an error (its backend timed
        out) the exchange is over."""
        if self._held.get(token) is not exchange or _answered(exchange):
            return
        del self._held[token]
        exchange.keep()

    def forget(self, exchange: Exchange) -> None:
        for token in [t for t, e in self._held.items() if e is exchange]:
            del self._held[token]


def _answered(exchange: Exchange) -> bool:
    task = exchange.task
    if task is None or task.cancelled() or task.exception() is not None:
        return False
    reply = task.result()
    return isinstance(reply, dict) and "result" in reply


def _caller(raw_key: str | None) -> str:
    return hash_key(raw_key) if raw_key else ""


def _request_of(message: Message) -> tuple[Any, Any]:
    params = message.get("params")
    name = params.get("name", params.get("uri")) if isinstance(params, dict) else None
    return message.get("method"), name
