"""server-everything behind the gateway, for the SDK client matrix (tests/e2e/test_sdk_*.py).

`@modelcontextprotocol/server-everything` (npm, tests/node) runs over stdio behind `--server`, or
in streamableHttp mode behind `--remote-url`. Over stdio it runs under tests/servers/stdio_tap.py,
which records what the gateway writes to it, so a test can see the server told of a cancellation
under the id it knows. What the matrix drives, and what each client answers, is named here once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import PYTHON, ROOT, Gateway, everything_http_server, node_server, running_gateway

STDIO_TAP = str(ROOT / "tests" / "servers" / "stdio_tap.py")

SAMPLING = "trigger-sampling-request"
ELICITATION = "trigger-elicitation-request"
LONG_RUNNING = "trigger-long-running-operation"
ROOTS = "get-roots-list"

# What server-everything asks, and what the clients answer.
SAMPLING_PREFIX = f"Resource {SAMPLING} context: "
SAMPLING_SYSTEM_PROMPT = "You are a helpful test server."
ELICITATION_MESSAGE = "Please provide inputs for the following fields:"
ELICITATION_ANSWER = {"name": "Ann Example", "check": True, "integer": 7}
ELICITATION_LINES = ["- Name: Ann Example", "- Agreed to terms: true", "- Favorite Integer: 7"]
# A progress run short enough to finish, and a run long enough to be cancelled (a step every 0.1 s).
PROGRESS_ARGS = {"duration": 0.3, "steps": 3}
PROGRESS_RESULT = "Long running operation completed. Duration: 0.3 seconds, Steps: 3."
CANCEL_ARGS = {"duration": 60, "steps": 600}


def sampling_text(model: str, text: str) -> str:
    """The tool result server-everything builds from a client's sampling answer (indented JSON)."""
    answer = {"model": model, "role": "assistant", "content": {"type": "text", "text": text}}
    return "LLM sampling result: \n" + json.dumps(answer, indent=2)


@dataclass
class Everything:
    """A gateway in front of server-everything; `record`: what the gateway wrote to it (stdio only)."""

    gw: Gateway
    transport: str
    record: Path | None

    def upstream(self) -> list[dict[str, Any]]:
        assert self.record is not None, "only the stdio transport is recorded"
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]

    def upstream_cancellation_of(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        """The `notifications/cancelled` the server got for its latest call of `tool` with `arguments`,
        or None."""
        messages = self.upstream()
        calls = [
            m["id"]
            for m in messages
            if m.get("method") == "tools/call"
            and m["params"]["name"] == tool
            and m["params"].get("arguments") == arguments
        ]
        assert calls, f"the server was never called {tool} with {arguments}"
        return next(
            (
                m
                for m in messages
                if m.get("method") == "notifications/cancelled" and m["params"]["requestId"] == calls[-1]
            ),
            None,
        )

    def logged_call(self, tool: str = LONG_RUNNING) -> dict[str, Any]:
        """The newest request-log entry of `tool` (the gateway's own record of a settled call)."""
        entries = self.gw.client.get("/requests", params={"tool": tool}, headers=self.gw.admin()).json()["requests"]
        assert entries, f"no {tool} call in the request log"
        return dict(entries[0])


@contextmanager
def everything_gateway(transport: str, directory: Path, *args: str) -> Iterator[Everything]:
    """The real CLI in front of server-everything over `transport` ("stdio" or "http"); no rate limit,
    cancelled and failed calls refunded (`--refund-on-failure`)."""
    options = ("--rate-limit", "0", "--refund-on-failure", *args)
    binary = node_server("mcp-server-everything")
    with ExitStack() as stack:
        if transport == "stdio":
            record = directory / "to-server.jsonl"
            record.touch()
            command = f"{PYTHON} {STDIO_TAP} {record} {binary} stdio"
            gw = stack.enter_context(running_gateway("--server", command, *options))
            yield Everything(gw, transport, record)
        else:
            backend = stack.enter_context(everything_http_server())
            gw = stack.enter_context(running_gateway("--remote-url", backend.url, *options))
            yield Everything(gw, transport, None)
