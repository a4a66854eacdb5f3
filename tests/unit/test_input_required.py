"""input_required exchanges: a retry whose held call ended meanwhile (its server stopped waiting for the
questions still out) gets the call's result; one whose call failed on its own finds nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from paygate.mcp.input_required import Exchanges
from paygate.mcp.jsonrpc import Message
from paygate.mcp.origin import Origin

KEY = "pg_test_key_for_exchanges"
CALL = {"name": "ask", "arguments": {}}


class QuietRelay:
    """The relay's surface an exchange uses; answers are recorded, nothing is delivered anywhere."""

    def __init__(self) -> None:
        self.answers: list[Message] = []

    async def client_answer(self, message: Message, session_id: str | None) -> bool:
        self.answers.append(message)
        return True

    def retoken(self, origin: Origin, token: Any) -> None: ...

    def deliver(self, origin: Origin, message: Message) -> bool:
        return True


def request(msg_id: str, **params: Any) -> Message:
    return {"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": {**CALL, **params}}


async def test_a_retry_after_the_call_finished_on_its_own_gets_the_result() -> None:
    relay = QuietRelay()
    exchanges = Exchanges(relay, hold_seconds=30)  # type: ignore[arg-type]
    origin = Origin(None, None, None)
    go_on, finish = asyncio.Event(), asyncio.Event()

    async def call() -> Message:
        assert origin.exchange is not None
        origin.exchange.ask({"jsonrpc": "2.0", "id": "q1", "method": "elicitation/create", "params": {}})
        await go_on.wait()
        # a stdio server's own roots/list, put to the only client in flight; the tool goes on regardless
        origin.exchange.ask({"jsonrpc": "2.0", "id": "q2", "method": "roots/list", "params": {}})
        await finish.wait()
        return {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "done"}]}}

    first = await exchanges.start(request("c1"), KEY, origin, call)
    state = first["result"]["requestState"]
    assert list(first["result"]["inputRequests"]) == ["q1"]
    go_on.set()
    second = await exchanges.resume(
        request("c2", requestState=state, inputResponses={"q1": {"action": "decline"}}), KEY, Origin(None, None, None)
    )
    assert second["result"]["resultType"] == "input_required" and list(second["result"]["inputRequests"]) == ["q2"]
    finish.set()  # the tool ends while the client answers q2, whose answer nobody waits for now
    for _ in range(3):
        await asyncio.sleep(0)  # the call's task has finished: its done-callback runs
    third = await exchanges.resume(
        request("c3", requestState=second["result"]["requestState"], inputResponses={"q2": {"roots": []}}),
        KEY,
        Origin(None, None, None),
    )
    assert third == {"jsonrpc": "2.0", "id": "c3", "result": {"content": [{"type": "text", "text": "done"}]}}
    assert [a["id"] for a in relay.answers] == ["q1", "q2"]
    assert len(exchanges) == 0  # single use: nothing is held any more


async def test_a_retry_after_the_call_failed_on_its_own_finds_nothing() -> None:
    exchanges = Exchanges(QuietRelay(), hold_seconds=30)  # type: ignore[arg-type]
    origin = Origin(None, None, None)
    fail = asyncio.Event()

    async def call() -> Message:
        assert origin.exchange is not None
        origin.exchange.ask({"jsonrpc": "2.0", "id": "q1", "method": "sampling/createMessage", "params": {}})
        await fail.wait()
        return {"jsonrpc": "2.0", "id": 7, "error": {"code": -32004, "message": "Tool call timed out"}}

    first = await exchanges.start(request("c1"), KEY, origin, call)
    fail.set()
    for _ in range(3):
        await asyncio.sleep(0)
    late = await exchanges.resume(
        request("c2", requestState=first["result"]["requestState"], inputResponses={}), KEY, Origin(None, None, None)
    )
    assert late["error"]["message"] == "Unknown or expired requestState"
    assert len(exchanges) == 0
