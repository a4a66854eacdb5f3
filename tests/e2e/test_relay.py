"""Server-to-client traffic through the gateway, driven by the official `mcp` SDK client (v2).

The backend asks the client's model (sampling), its user (elicitation) and its roots, and reports
progress, mid-call; each must reach the client whose call caused it, and the client's answers must
reach the backend. Over stdio and over Streamable HTTP (the server streaming SSE).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    ListRootsResult,
    Root,
    TextContent,
)

from tests.support import ECHO_COMMAND, Gateway, echo_http_server, running_gateway, wait_until
from tests.support import text_of as text_of_reply

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["stdio", "http"], scope="module")
def relay_gateway(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    if request.param == "stdio":
        with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gw:
            yield gw
    else:
        with (
            echo_http_server(sse=True) as backend,
            running_gateway("--remote-url", backend.url, "--rate-limit", "0") as gw,
        ):
            yield gw


class Person:
    """A client's model, user and roots, answering as `name` and recording what it was asked."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked: list[str] = []

    async def sample(self, context: Any, params: CreateMessageRequestParams) -> CreateMessageResult:
        content = params.messages[0].content
        self.asked.append(content.text if isinstance(content, TextContent) else "?")
        return CreateMessageResult(
            role="assistant",
            model=f"{self.name}-model",
            content=TextContent(type="text", text=f"{self.name} thinks so"),
        )

    async def elicit(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params.message)
        return ElicitResult(action="accept", content={"answer": f"{self.name}'s answer"})

    async def roots(self, context: Any) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=f"file:///home/{self.name}", name=self.name)])


@asynccontextmanager
async def connected(gw: Gateway, key: str, person: Person, mode: str = "auto") -> AsyncIterator[Client]:
    """`auto` negotiates 2026-07-28 (questions come as input_required answers); `legacy` uses a session
    (questions come as server requests on the POST's stream)."""
    async with (
        httpx2.AsyncClient(headers={"X-API-Key": key}, timeout=30.0) as http,
        Client(
            streamable_http_client(f"{gw.url}/mcp", http_client=http),
            sampling_callback=person.sample,
            elicitation_callback=person.elicit,
            list_roots_callback=person.roots,
            mode=mode,
        ) as client,
    ):  # type: ignore[arg-type]
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        yield client


def text_of(result: Any) -> str:
    assert not result.is_error, result
    first = result.content[0]
    assert isinstance(first, TextContent)
    return first.text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sampling_elicitation_and_roots_reach_the_client_and_its_answers_the_server(
    relay_gateway: Gateway, mode: str
) -> None:
    key = relay_gateway.create_key(10)
    ann = Person("ann")
    async with connected(relay_gateway, key, ann, mode) as client:
        assert (
            text_of(await client.call_tool("ask_llm", {"prompt": "is it sunny?"}))
            == "model ann-model said: ann thinks so"
        )
        assert text_of(await client.call_tool("ask_user", {"question": "your name?"})) == "accept: ann's answer"
        assert text_of(await client.call_tool("client_roots", {})) == "file:///home/ann"
    assert ann.asked == ["is it sunny?", "your name?"]
    assert relay_gateway.balance(key) == 7  # three calls, one credit each; the relayed requests are free


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_progress_reaches_the_caller_under_its_own_token(relay_gateway: Gateway, mode: str) -> None:
    key = relay_gateway.create_key(10)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connected(relay_gateway, key, Person("bo"), mode) as client:
        result = await client.call_tool("progress", {"steps": 3}, progress_callback=on_progress)
    assert text_of(result) == "3 steps"
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_two_clients_calling_at_once_each_get_their_own_server_requests(relay_gateway: Gateway) -> None:
    """Over HTTP the server names the request; over stdio the gateway must not guess between two
    clients with calls in flight, so there each client asks in turn while the other is connected."""
    ann, bo = Person("ann"), Person("bo")
    async with (
        connected(relay_gateway, relay_gateway.create_key(10), ann) as a,
        connected(relay_gateway, relay_gateway.create_key(10), bo) as b,
    ):
        if relay_gateway.ready["transport"] == "http":
            answers = await asyncio.gather(
                *(
                    c.call_tool("ask_llm", {"prompt": f"from {p.name}"})
                    for c, p in ((a, ann), (b, bo))
                    for _ in range(3)
                )
            )
            texts = [text_of(r) for r in answers]
        else:
            texts = [
                text_of(await c.call_tool("ask_llm", {"prompt": f"from {p.name}"}))
                for c, p in ((a, ann), (b, bo))
                for _ in range(3)
            ]
    assert texts == ["model ann-model said: ann thinks so"] * 3 + ["model bo-model said: bo thinks so"] * 3
    assert ann.asked == ["from ann"] * 3 and bo.asked == ["from bo"] * 3


async def test_a_server_request_the_gateway_cannot_attribute_is_refused_not_misdelivered(
    relay_gateway: Gateway,
) -> None:
    """While ann's call is in flight, bo's call makes the server ask for sampling. Over HTTP the
    server names bo's request; over stdio nothing does, so the gateway refuses rather than guess."""
    key = relay_gateway.create_key(20)
    ann, bo = Person("ann"), Person("bo")
    seconds = 2.5 if relay_gateway.ready["transport"] == "http" else 3.5

    def began() -> bool:
        return f"{seconds:g}" in text_of_reply(relay_gateway.call_tool("slow_calls", {}, key)).split(";")[0]

    async with connected(relay_gateway, key, ann) as a, connected(relay_gateway, key, bo) as b:
        slow = asyncio.ensure_future(a.call_tool("slow", {"seconds": seconds}))
        await asyncio.to_thread(wait_until, began, 10, "the server to begin ann's call")
        if relay_gateway.ready["transport"] == "http":
            assert text_of(await b.call_tool("ask_llm", {"prompt": "bo asks"})) == "model bo-model said: bo thinks so"
        else:
            with pytest.raises(MCPError, match="PayGate cannot tell which client sampling/createMessage is for"):
                await b.call_tool("ask_llm", {"prompt": "bo asks"})  # the server passes our refusal on
        assert text_of(await slow) == f"slept {seconds:g}"
    assert bo.asked == (["bo asks"] if relay_gateway.ready["transport"] == "http" else [])
    assert ann.asked == []


async def test_a_client_that_did_not_declare_sampling_is_never_asked(relay_gateway: Gateway) -> None:
    key = relay_gateway.create_key(5)
    async with (
        httpx2.AsyncClient(headers={"X-API-Key": key}, timeout=30.0) as http,
        Client(streamable_http_client(f"{relay_gateway.url}/mcp", http_client=http)) as client,
    ):
        with pytest.raises(MCPError, match="The client does not support sampling"):
            await client.call_tool("ask_llm", {"prompt": "anyone?"})
