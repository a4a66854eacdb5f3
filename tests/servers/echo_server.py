"""A small MCP server of our own (the official SDK's MCPServer) for end-to-end tests.

Run: python -m tests.servers.echo_server [stdio|http PORT [sse]]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.message import ServerMessageMetadata
from mcp_types import ListRootsRequest, ListRootsResult, SamplingMessage, TextContent
from pydantic import BaseModel

server = MCPServer("paygate-test-echo", version="1.0")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def fail(reason: str = "asked to fail") -> str:
    """Always fails (the result has isError: true)."""
    raise ValueError(reason)


@server.tool()
def big_output(kilobytes: int) -> str:
    """Return about `kilobytes` KB of text."""
    return "x" * (kilobytes * 1024)


STARTED: list[float] = []  # `seconds` of each slow call the server began
CANCELLED: list[float] = []  # ... and of each one it saw cancelled (notifications/cancelled)


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer (for timeouts, concurrency and cancellation)."""
    STARTED.append(seconds)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        CANCELLED.append(seconds)
        raise
    return f"slept {seconds}"


@server.tool()
def slow_calls() -> str:
    """`started:1.5,31;cancelled:31`: the slow calls this server began, and those it saw cancelled."""
    return "started:" + ",".join(f"{s:g}" for s in STARTED) + ";cancelled:" + ",".join(f"{s:g}" for s in CANCELLED)


MEETINGS: dict[str, list[asyncio.Event]] = {}


@server.tool()
async def meet(group: str, count: int) -> str:
    """Wait (up to 10 s) until `count` calls of `group` are in progress at once: "met", or fail "alone".

    Proves that calls ran concurrently without timing them: run one after the other, none ever meets."""
    arrived = MEETINGS.setdefault(group, [])
    here = asyncio.Event()
    arrived.append(here)
    if len(arrived) >= count:
        for waiting in arrived:
            waiting.set()
    try:
        await asyncio.wait_for(here.wait(), 10)
    except TimeoutError:
        arrived.remove(here)
        raise ValueError(f"alone: {len(arrived) + 1} of {count} in {group}") from None
    return "met"


@server.tool()
async def announce(text: str, ctx: Context) -> str:
    """Send `text` as a log notification, then answer (for notification forwarding)."""
    await ctx.info(text)
    return "announced"


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Register a new tool `name` and tell the client the tool list changed."""

    def added() -> str:
        return f"{name} works"

    server.add_tool(added, name=name, description="added at run time")
    await ctx.session.send_tool_list_changed()
    return f"added {name}"


@server.tool()
def grow_quietly(name: str) -> str:
    """Register a new tool `name` without telling anyone (no list_changed)."""

    def added() -> str:
        return f"{name} works"

    server.add_tool(added, name=name, description="added quietly")
    return f"added {name} quietly"


@server.tool()
async def progress(steps: int, ctx: Context) -> str:
    """Report `steps` progress notifications, then answer."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
    return f"{steps} steps"


@server.tool()
async def ask_llm(prompt: str, ctx: Context) -> str:
    """Ask the client's model (sampling/createMessage) and return its text."""
    result = await ctx.session.create_message(
        [SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
        max_tokens=50,
        related_request_id=ctx.request_id,
    )
    content = result.content
    return f"model {result.model} said: {content.text if isinstance(content, TextContent) else content}"


class Answer(BaseModel):
    answer: str


@server.tool()
async def ask_user(question: str, ctx: Context) -> str:
    """Ask the client's user (elicitation/create) and return what they did."""
    result = await ctx.elicit(question, Answer)
    return f"{result.action}: {result.data.answer}" if result.action == "accept" and result.data else result.action


@server.tool()
async def client_roots(ctx: Context) -> str:
    """The client's roots (roots/list), comma-separated."""
    result = await ctx.session.send_request(
        ListRootsRequest(), ListRootsResult, metadata=ServerMessageMetadata(related_request_id=ctx.request_id)
    )
    return ",".join(str(root.uri) for root in result.roots)


@server.tool()
async def progress_slowly(steps: int, seconds: float, ctx: Context) -> str:
    """Report `steps` progress notifications `seconds` apart, then answer (for resumed streams)."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await asyncio.sleep(seconds)
    return f"{steps} slow steps"


@server.tool()
async def progress_then_crash(steps: int, ctx: Context) -> str:
    """Report `steps` progress notifications, then kill this server mid-call (a backend dying mid-stream)."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps + 1, f"step {step}")
    await asyncio.sleep(0.2)  # let the notifications leave before the process does
    os._exit(3)


@server.tool()
def crash() -> str:
    """Kill this server process (for dead-backend tests)."""
    os._exit(3)


def wait_at_start_gate() -> None:
    """While the file named by $ECHO_START_GATE exists, do not start serving.

    Lets a test hold a restarted server down for exactly as long as it needs (no fixed sleeps).
    """
    gate = os.environ.get("ECHO_START_GATE")
    while gate and os.path.exists(gate):
        time.sleep(0.02)


if __name__ == "__main__":
    wait_at_start_gate()
    mode = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if mode == "http":
        # JSON answers by default; `sse` streams them, so the server can send requests mid-call
        sse = len(sys.argv) > 3 and sys.argv[3] == "sse"
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]), json_response=not sse)
    else:
        server.run()
