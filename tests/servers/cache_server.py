"""A stdio MCP server whose tools count their own invocations (the response cache's and dedup's end-to-end
tests): every answer says how many times the server really ran a tool, so a test sees whether the gateway
ran a call or answered it without running it.

Run: python tests/servers/cache_server.py
"""

from __future__ import annotations

import asyncio

from mcp.server.mcpserver import MCPServer

server = MCPServer("paygate-test-cache", version="1.0")
RUNS = {"count": 0}


def ran(q: str) -> str:
    RUNS["count"] += 1
    return f"{q}#{RUNS['count']}"


@server.tool()
def lookup(q: str) -> str:
    """Answer `q` with the number of tool runs so far (this one included)."""
    return ran(q)


@server.tool()
async def slow_lookup(q: str, seconds: float) -> str:
    """As lookup, after sleeping `seconds` (so concurrent duplicates overlap)."""
    await asyncio.sleep(seconds)
    return ran(q)


@server.tool()
def invocations() -> int:
    """How many times lookup and slow_lookup really ran."""
    return RUNS["count"]


if __name__ == "__main__":
    server.run()
