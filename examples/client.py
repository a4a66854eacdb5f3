"""Call a tool through the gateway with the official MCP Python SDK (2.x), then read the balance.

    KEY=pg_... python examples/client.py [URL]

URL defaults to the README's first command's gateway (http://127.0.0.1:3402). Tool prices come
from GET /pricing: the SDK's Tool model drops the `_pricing` field tools/list carries.
"""

from __future__ import annotations

import asyncio
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(base: str, key: str) -> None:
    async with httpx2.AsyncClient(headers={"X-API-Key": key}, timeout=30.0) as http:
        prices = (await http.get(f"{base}/pricing")).json()
        print("prices:", {t["name"]: t["creditsPerCall"] for t in prices["tools"]})
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            tools = await client.list_tools()
            print("tools:", [t.name for t in tools.tools])
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
            print("result:", result.content[0].text if result.content else result)
        print("balance:", (await http.get(f"{base}/balance")).json()["credits"])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:3402", os.environ["KEY"]))
