"""The gateway inside a Python program (docs/embedding.md): start it in front of an MCP server, create a
key through the admin API, make a paid call with the official MCP SDK, read the balance, stop.

    pip install -e . mcp mcp-server-time
    python examples/embed.py [path/to/mcp-server-time]
"""

from __future__ import annotations

import asyncio
import shutil
import sys

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from paygate.config import load_settings
from paygate.embed import serve


async def main(server: str) -> None:
    settings = load_settings(
        {
            "serverCommand": server,
            "port": 0,
            "stateFile": ":memory:",
            "toolPricing": {"get_current_time": {"creditsPerCall": 2}},
        },
        environ={},  # this program's settings only, whatever PAYGATE_* variables are set
    )
    async with serve(settings) as gateway, httpx.AsyncClient(base_url=gateway.url) as admin:
        created = await admin.post(
            "/keys", json={"name": "embedded", "credits": 10}, headers={"X-Admin-Key": str(gateway.admin_key)}
        )
        key = created.json()["key"]
        async with (
            httpx.AsyncClient(headers={"X-API-Key": key}) as http,
            streamable_http_client(f"{gateway.url}/mcp", http_client=http) as (read, write, *_),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool("get_current_time", {"timezone": "UTC"})
            print("tool answered:", result.content[0].text if result.content else result)  # type: ignore[union-attr]
        balance = (await admin.get("/balance", headers={"X-API-Key": key})).json()["credits"]
        print("credits left:", balance)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else shutil.which("mcp-server-time") or "mcp-server-time"))
