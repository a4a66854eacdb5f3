"""An MCP server whose tool names are markup (for the dashboard's XSS tests): a page that put a tool name
in as HTML would run it. Also `echo`, an ordinary tool. Run: python tests/servers/hostile_names_server.py"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

HOSTILE_TOOL = "<img src=x onerror=alert('tool')>"

server = MCPServer("paygate-test-hostile-names", version="1.0")


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@server.tool(name=HOSTILE_TOOL)
def hostile(text: str = "") -> str:
    """A tool whose name is markup."""
    return text


if __name__ == "__main__":
    server.run()
