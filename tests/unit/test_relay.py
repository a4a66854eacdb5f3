"""The relay's routing rules (mcp/relay.py), with a backend double that records what it is sent."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from paygate.mcp.channel import PostChannel
from paygate.mcp.jsonrpc import Message
from paygate.mcp.origin import Origin, current_origin
from paygate.mcp.relay import Relay
from paygate.mcp.sessions import Session, SessionManager


class Answers:
    """Stands in for a backend: only `respond` is used by the relay."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def respond(self, message: Message) -> None:
        self.sent.append(message)


def listening(sessions: SessionManager, capabilities: dict[str, Any] | None = None) -> tuple[Session, Any]:
    session = sessions.create("2025-06-18")
    assert session is not None
    session.capabilities = capabilities if capabilities is not None else {"sampling": {}}
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    session.streams.add(queue)
    return session, queue


def message_of(frame: bytes | None) -> dict[str, Any]:
    """The JSON-RPC message of one SSE event (session streams carry framed events)."""
    assert frame is not None
    data = next(line for line in frame.split(b"\n") if line.startswith(b"data: "))
    return dict(json.loads(data[6:]))


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_progress_tokens_are_swapped_both_ways_and_forgotten_with_the_answer() -> None:
    sessions = SessionManager()
    relay = Relay(sessions, 60)
    one, q1 = listening(sessions)
    two, q2 = listening(sessions)
    o1, o2 = Origin(one, None, None), Origin(two, None, None)
    p1, t1 = relay.begin(o1, {"name": "x", "_meta": {"progressToken": 1}})
    p2, t2 = relay.begin(o2, {"name": "x", "_meta": {"progressToken": 1}})
    assert t1 and t2 and t1 != t2 and p1["_meta"]["progressToken"] == t1 and p2["_meta"]["progressToken"] == t2
    backend: Any = Answers()
    relay.on_server_message(
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": t2, "progress": 5}}, backend
    )
    assert q1.empty() and message_of(q2.get_nowait())["params"] == {"progressToken": 1, "progress": 5}
    relay.end(o2, t2)
    relay.on_server_message(
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": t2, "progress": 6}}, backend
    )
    assert q2.empty()  # after the answer, that token is no one's
    relay.end(o1, t1)


async def test_a_server_request_goes_to_its_origin_and_only_that_session_may_answer() -> None:
    sessions = SessionManager()
    relay = Relay(sessions, 60)
    mine, queue = listening(sessions)
    other, _ = listening(sessions)
    origin = Origin(mine, None, None)
    backend: Any = Answers()
    token = current_origin.set(origin)
    relay.on_server_message({"jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage", "params": {}}, backend)
    current_origin.reset(token)
    relayed = message_of(queue.get_nowait())
    assert relayed["method"] == "sampling/createMessage" and relayed["id"] != 7
    answer = {"jsonrpc": "2.0", "id": relayed["id"], "result": {"role": "assistant"}}
    assert not await relay.client_answer(answer, other.id)  # another session cannot answer for it
    assert await relay.client_answer(answer, mine.id)
    assert backend.sent == [{"jsonrpc": "2.0", "id": 7, "result": {"role": "assistant"}}]
    assert not await relay.client_answer(answer, mine.id)  # single use


async def test_requests_with_no_attributable_client_or_capability_are_refused() -> None:
    sessions = SessionManager()
    relay = Relay(sessions, 60)
    a, _ = listening(sessions)
    b, _ = listening(sessions, capabilities={})
    backend: Any = Answers()
    oa, ob = Origin(a, None, None), Origin(b, None, None)
    relay.begin(oa, {})
    relay.begin(ob, {})
    relay.on_server_message({"jsonrpc": "2.0", "id": 1, "method": "roots/list"}, backend)  # two in flight
    relay.end(oa, None)
    relay.on_server_message({"jsonrpc": "2.0", "id": 2, "method": "sampling/createMessage"}, backend)  # b only
    relay.on_server_message({"jsonrpc": "2.0", "id": 3, "method": "ping"}, backend)
    await settle()
    by_id = {m["id"]: m for m in backend.sent}
    assert "cannot tell which client" in by_id[1]["error"]["message"]
    assert by_id[2]["error"]["message"] == "The client does not support sampling"
    assert by_id[3] == {"jsonrpc": "2.0", "id": 3, "result": {}}


async def test_a_post_channel_opens_a_stream_only_when_the_server_speaks_first() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    quiet = PostChannel(send, True, lambda: [])
    quiet.close()
    assert not quiet.push({"x": 1}) and not quiet.streaming and sent == []
    talking = PostChannel(send, True, lambda: [(b"mcp-session-id", b"s")])
    assert talking.push({"jsonrpc": "2.0", "method": "notifications/message"})
    await talking.finish({"jsonrpc": "2.0", "id": 1, "result": {}})
    assert sent[0]["type"] == "http.response.start" and (b"mcp-session-id", b"s") in sent[0]["headers"]
    bodies = [m["body"] for m in sent[1:]]
    assert bodies[0].startswith(b"event: message\ndata: {") and b'"id":1' in bodies[1] and bodies[-1] == b""
    assert not PostChannel(send, False, lambda: []).push({"x": 1})  # a JSON-only client gets no stream
