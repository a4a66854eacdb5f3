"""The in-process echo double (tests/echo_backend.py) answers as the real echo server does.

One real gateway wraps tests/servers/echo_server.py over stdio; one in-process gateway serves the
double. Both are asked the same things through the gateway; what the backend decides (tools,
capabilities, content, structuredContent, isError) must be the same, so the double cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, Gateway, GatewayClient, running_gateway

# (tool, arguments): answered by the double exactly as by the server
SAME_ANSWERS = [
    ("echo", {"text": "hi ✓"}),
    ("echo", {"text": ""}),
    ("add", {"a": 2, "b": 40}),
    ("add", {"a": -1, "b": "3"}),
    ("fail", {}),
    ("fail", {"reason": "boom"}),
    ("big_output", {"kilobytes": 2}),
    ("slow", {"seconds": 0.01}),
    ("meet", {"group": "alone-but-enough", "count": 1}),
    ("announce", {"text": "hello"}),
    ("grow_quietly", {"name": "sprout"}),
    ("sprout", {}),
]
# refused by both as a tool error (the messages come from pydantic in the server: only the start is the same)
BAD_ARGUMENTS = [("echo", {}), ("add", {"a": "x", "b": 1}), ("big_output", {"kilobytes": "many"})]


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[Gateway, InProcessGateway]]:
    with (
        running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as real,
        running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as double,
    ):
        yield real, double


def call(gw: GatewayClient, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    key = gw.create_key(5)
    reply = gw.call_tool(name, arguments, key)
    assert "result" in reply, reply
    return dict(reply["result"])


def test_the_double_lists_the_same_tools_and_capabilities(both: tuple[Gateway, InProcessGateway]) -> None:
    real, double = both
    key_real, key_double = real.create_key(1), double.create_key(1)
    assert (
        double.rpc("tools/list", {}, key_double).json()["result"]
        == real.rpc("tools/list", {}, key_real).json()["result"]
    )
    init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    real_init = real.rpc("initialize", init, key_real).json()["result"]
    double_init = double.rpc("initialize", init, key_double).json()["result"]
    assert double_init["serverInfo"] == real_init["serverInfo"]
    assert double_init["capabilities"] == real_init["capabilities"]
    assert real.ready["tools"] == double.ready["tools"] == 17
    assert real.ready["transport"] == double.ready["transport"] == "stdio"


@pytest.mark.parametrize(("name", "arguments"), SAME_ANSWERS)
def test_the_double_answers_a_call_as_the_server_does(
    both: tuple[Gateway, InProcessGateway], name: str, arguments: dict[str, Any]
) -> None:
    real, double = both
    assert call(double, name, arguments) == call(real, name, arguments)


@pytest.mark.parametrize(("name", "arguments"), BAD_ARGUMENTS)
def test_the_double_refuses_bad_arguments_as_the_server_does(
    both: tuple[Gateway, InProcessGateway], name: str, arguments: dict[str, Any]
) -> None:
    real, double = both
    got, want = call(double, name, arguments), call(real, name, arguments)
    assert got["isError"] is want["isError"] is True and "structuredContent" not in got | want
    assert got["content"][0]["text"].split(":")[0] == want["content"][0]["text"].split(":")[0]


@pytest.mark.parametrize("method", ["ping", "resources/list", "prompts/list", "resources/templates/list"])
def test_the_double_answers_other_methods_as_the_server_does(
    both: tuple[Gateway, InProcessGateway], method: str
) -> None:
    real, double = both
    assert double.rpc(method, {}, double.create_key(1)).json() == real.rpc(method, {}, real.create_key(1)).json()
