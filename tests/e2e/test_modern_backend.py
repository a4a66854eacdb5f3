"""A backend that speaks only 2026-07-28, behind the real CLI: the gateway discovers it, stamps every
request with the envelope, and resolves its `input_required` questions with the client — handshake-era
and 2026-07-28 clients alike — charging each call once. Over stdio and Streamable HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.test_relay import Person, connected, text_of
from tests.support import PYTHON, Gateway, free_port, running_gateway, start_server
from tests.support import text_of as text_of_reply

pytestmark = pytest.mark.e2e
MODERN_SERVER = str(Path(__file__).resolve().parents[1] / "servers" / "modern_server.py")


@contextmanager
def modern_gateway(transport: str) -> Iterator[Gateway]:
    if transport == "stdio":
        with running_gateway("--server", f"{PYTHON} {MODERN_SERVER}", "--rate-limit", "0") as gw:
            yield gw
        return
    port = free_port()
    server = start_server([PYTHON, MODERN_SERVER, "http", str(port)], port)
    try:
        with running_gateway("--remote-url", server.url, "--rate-limit", "0") as gw:
            yield gw
    finally:
        server.stop()


@pytest.fixture(scope="module", params=["stdio", "http"])
def gw(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    with modern_gateway(request.param) as gateway:
        yield gateway


def calls(gw: Gateway, key: str) -> dict[str, int]:
    return dict(json.loads(text_of_reply(gw.call_tool("calls", {}, key))))


def test_a_modern_only_server_is_discovered_listed_priced_and_charged(gw: Gateway) -> None:
    tools = {t["name"]: t for t in gw.rpc("tools/list").json()["result"]["tools"]}
    assert set(tools) == {"echo", "ask", "calls"} and tools["echo"]["_pricing"]["creditsPerCall"] == 1
    key = gw.create_key(5)
    assert text_of_reply(gw.call_tool("echo", {"text": "hello"}, key)) == "hello"  # the server checked the envelope
    assert gw.balance(key) == 4
    init = gw.rpc(
        "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    ).json()["result"]
    assert init["serverInfo"]["name"] == "modern-only" and init["protocolVersion"] == "2025-06-18"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_servers_question_reaches_the_client_and_the_call_is_charged_once(gw: Gateway, mode: str) -> None:
    key = gw.create_key(10)
    before = calls(gw, key).get("ask", 0)
    ann = Person("ann")
    async with connected(gw, key, ann, mode) as client:
        answer = await client.call_tool("ask", {"prompt": "is it sunny?"})
    assert text_of(answer) == "ann-model said: ann thinks so" and ann.asked == ["is it sunny?"]
    assert calls(gw, key)["ask"] == before + 2  # asked, then retried with the answer
    assert gw.balance(key) == 10 - 1 - 2  # the call once; the two `calls` probes
