"""The official `mcp` Python SDK client (v2, the current major) against server-everything, through the gateway.

server-everything is the TypeScript SDK's reference server; over stdio and over Streamable HTTP
it asks the client's model (sampling), its user (elicitation) and its roots, reports progress,
and runs an operation long enough to cancel. Each effect is checked where it lands: in the
client's callbacks, in the tool's result, in the key's balance and the gateway's request log,
and, over stdio, in what the server itself was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import (
    CallToolResult,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestFormParams,
    ElicitRequestParams,
    ElicitResult,
    ListRootsResult,
    Root,
    TextContent,
)

from tests.everything import (
    CANCEL_ARGS,
    ELICITATION,
    ELICITATION_ANSWER,
    ELICITATION_LINES,
    ELICITATION_MESSAGE,
    LONG_RUNNING,
    PROGRESS_ARGS,
    PROGRESS_RESULT,
    ROOTS,
    SAMPLING,
    SAMPLING_PREFIX,
    SAMPLING_SYSTEM_PROMPT,
    Everything,
    everything_gateway,
    sampling_text,
)
from tests.support import wait_until

pytestmark = pytest.mark.e2e


class Person:
    """A client's model, user and roots; records what the server asked."""

    def __init__(self, elicit_action: str = "accept") -> None:
        self.elicit_action = elicit_action
        self.sampled: list[CreateMessageRequestParams] = []
        self.elicited: list[ElicitRequestParams] = []
        self.roots_asked = 0

    async def sample(self, context: Any, params: CreateMessageRequestParams) -> CreateMessageResult:
        self.sampled.append(params)
        return CreateMessageResult(role="assistant", model="v2-model", content=TextContent(type="text", text="42"))

    async def elicit(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.elicited.append(params)
        if self.elicit_action != "accept":
            return ElicitResult(action="decline")
        return ElicitResult(action="accept", content=ELICITATION_ANSWER)

    async def roots(self, context: Any) -> ListRootsResult:
        self.roots_asked += 1
        return ListRootsResult(roots=[Root(uri="file:///home/ann/project", name="ann's project")])


@asynccontextmanager
async def connected(everything: Everything, key: str, person: Person) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"X-API-Key": key}, timeout=30.0) as http,
        Client(
            streamable_http_client(f"{everything.gw.url}/mcp", http_client=http),
            sampling_callback=person.sample,
            elicitation_callback=person.elicit,
            list_roots_callback=person.roots,
        ) as client,
    ):
        yield client


def texts(result: CallToolResult) -> list[str]:
    assert not result.is_error, result
    return [c.text for c in result.content if isinstance(c, TextContent)]


async def test_the_clients_model_answers_the_servers_sampling_request_and_its_answer_is_the_tool_result(
    everything: Everything,
) -> None:
    key = everything.gw.create_key(5)
    person = Person()
    async with connected(everything, key, person) as client:
        with anyio.fail_after(20):
            result = await client.call_tool(SAMPLING, {"prompt": "what is six times seven?", "maxTokens": 7})
    assert texts(result) == [sampling_text("v2-model", "42")]
    [asked] = person.sampled
    first = asked.messages[0].content
    assert isinstance(first, TextContent) and first.text == SAMPLING_PREFIX + "what is six times seven?"
    assert (asked.system_prompt, asked.max_tokens) == (SAMPLING_SYSTEM_PROMPT, 7)
    assert everything.gw.balance(key) == 4  # the call costs 1; the relayed sampling request is free


@pytest.mark.parametrize("action", ["accept", "decline"])
async def test_the_clients_user_answers_the_servers_elicitation_and_the_answer_is_the_tool_result(
    everything: Everything, action: str
) -> None:
    key = everything.gw.create_key(5)
    person = Person(elicit_action=action)
    async with connected(everything, key, person) as client:
        with anyio.fail_after(20):
            result = await client.call_tool(ELICITATION, {})
    [asked] = person.elicited
    assert isinstance(asked, ElicitRequestFormParams) and asked.message == ELICITATION_MESSAGE
    assert asked.requested_schema["required"] == ["name"]
    if action == "accept":
        assert texts(result)[:2] == [
            "✅ User provided the requested information!",
            "User inputs:\n" + "\n".join(ELICITATION_LINES),
        ]
    else:
        assert texts(result)[0] == "❌ User declined to provide the requested information."
    assert everything.gw.balance(key) == 4


async def test_each_step_of_a_long_operation_reaches_the_callers_progress_callback_in_order(
    everything: Everything,
) -> None:
    key = everything.gw.create_key(5)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connected(everything, key, Person()) as client:
        with anyio.fail_after(20):
            result = await client.call_tool(LONG_RUNNING, PROGRESS_ARGS, progress_callback=on_progress)
    assert texts(result) == [PROGRESS_RESULT]
    assert seen == [(1, 3, None), (2, 3, None), (3, 3, None)]
    assert everything.gw.balance(key) == 4


async def test_a_call_the_sdk_cancels_ends_at_the_gateway_reaches_the_server_and_is_refunded(
    everything: Everything,
) -> None:
    """Cancelling the caller's scope makes the v2 SDK send notifications/cancelled; the gateway
    ends the call, tells the server under the server's id and refunds (--refund-on-failure)."""
    key = everything.gw.create_key(5)
    began = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        began.set()

    async def call(client: Client) -> None:
        await client.call_tool(LONG_RUNNING, CANCEL_ARGS, progress_callback=on_progress)

    async with connected(everything, key, Person()) as client:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call, client)
                await began.wait()  # the server is running it: the first progress step arrived
                assert everything.gw.balance(key) == 4  # charged while it runs
                tasks.cancel_scope.cancel()
        await asyncio.to_thread(wait_until, lambda: everything.gw.balance(key) == 5, 10, "the refund")
        entry = everything.logged_call()
        assert (entry["status"], entry["credits"]) == ("allowed", 0)
        assert entry["durationMs"] < 10_000  # the operation would have run for 60 s
        if everything.record is not None:

            def told() -> bool:
                return everything.upstream_cancellation_of(LONG_RUNNING, CANCEL_ARGS) is not None

            await asyncio.to_thread(wait_until, told, 10, "the server to be sent notifications/cancelled")
        # the session still works after the cancellation
        assert texts(await client.call_tool("echo", {"message": "still here"})) == ["Echo: still here"]
    assert everything.gw.balance(key) == 4


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_the_roots_request_the_server_makes_on_its_own_reaches_the_only_client(
    transport: str, tmp_path: Path
) -> None:
    """server-everything asks for roots outside any call (on its GET stream over HTTP) and keeps the
    answer for its session, which the gateway's clients share: a gateway of its own, so this client
    is the only one there to ask, whether the server asks at start-up or during the call."""
    with everything_gateway(transport, tmp_path) as everything:
        key = everything.gw.create_key(5)
        person = Person()
        async with connected(everything, key, person) as client:
            with anyio.fail_after(20):
                result = await client.call_tool(ROOTS, {})
        assert texts(result)[0].startswith(
            "Current MCP Roots (1 total):\n\n1. ann's project\n   URI: file:///home/ann/project"
        )
        assert person.roots_asked >= 1  # twice if the server's start-up request found the call in flight
        assert everything.gw.balance(key) == 4
