"""paygate.client against the README's first command: list the tools with their prices, call one,
follow the credits, top up when they run out, and handle a denial by its type.

    KEY=pg_... [ADMIN=...] python examples/paygate_client.py [URL]

URL defaults to the README's gateway (http://127.0.0.1:3402). With ADMIN (the admin key,
`~/.paygate/admin.key`), the payment hook tops the key up by 10 credits when a call is refused for
lack of them, standing in for a real payment (a Stripe Checkout link, an x402 payment: docs/client.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
from collections.abc import Callable

from paygate.client import AsyncPayGateClient, InsufficientCredits, PayGateError


def top_up(base: str, key: str, admin: str | None) -> Callable[[PayGateError], bool]:
    """The payment hook: a plain function (the client runs it in a worker thread, so it may block)."""

    def on_payment_required(denied: PayGateError) -> bool:
        print(f"payment required: {denied.tool} costs {denied.credits_required}, {denied.credits_remaining} left")
        if admin is None:
            return False  # no way to pay here: the denial is raised
        request = urllib.request.Request(
            f"{base}/topup",
            data=json.dumps({"key": key, "credits": 10}).encode(),
            headers={"X-Admin-Key": admin, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            print("topped up:", json.load(answer)["newBalance"])
        return True  # retry the call, once

    return on_payment_required


async def main(base: str, key: str, admin: str | None) -> None:
    hook = top_up(base, key, admin)
    async with AsyncPayGateClient(base, api_key=key, on_payment_required=hook) as client:
        for tool in await client.list_tools():
            price = tool.pricing.credits_per_call if tool.pricing else "?"
            print(f"tool: {tool.name} ({price} credits)")
        for zone in ("UTC", "Europe/Paris"):
            try:
                result = await client.call_tool("get_current_time", {"timezone": zone})
            except InsufficientCredits as unpaid:  # the hook could not pay (no ADMIN), or the retry failed
                print(f"out of credits: {unpaid.message}")
                break
            text = result.content[0].text if result.content and result.content[0].type == "text" else result
            print("result:", text)
            print("credits remaining:", client.credits_remaining)
        try:
            await client.call_tool("no_such_tool", {})
        except PayGateError as refused:
            print(f"refused: {type(refused).__name__} ({refused.reason})")
        balance = await client.balance()
        print(f"balance: {balance.credits} (spent {balance.total_spent} in {balance.total_calls} calls)")


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:3402"
    asyncio.run(main(url, os.environ["KEY"], os.environ.get("ADMIN")))
