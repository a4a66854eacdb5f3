"""Several `paygate-mcp wrap` processes on one real redis-server: what the fleet tests share.

Gateways start in parallel (each takes seconds to boot its backend); `paid_calls` fires tool calls at
once, spread over instances, and sorts the answers into what a client can tell apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import ECHO_COMMAND, Gateway, start_gateway

ADMIN_KEY = "fleet-admin-key-0123456789"


def start_fleet(count: int, redis_url: str, *extra: str) -> list[Gateway]:
    """`count` gateways on `redis_url`, started at once; none is left running if one fails to start."""
    args = ("--server", ECHO_COMMAND, "--redis-url", redis_url, *extra)
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(start_gateway, *args, admin_key=ADMIN_KEY) for _ in range(count)]
    started = [f.result() for f in futures if f.exception() is None]
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        stop_all(started)
        raise failed[0]  # type: ignore[misc]
    return started


def stop_all(gateways: Sequence[Gateway]) -> None:
    for gw in gateways:
        gw.stop()


@dataclass
class Answers:
    """What came back from a set of tool calls."""

    ok: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # JSON-RPC error -> count (by data.reason or code)
    transport: int = 0  # no HTTP answer at all (connection dropped)
    other: list[str] = field(default_factory=list)  # anything else: an HTTP 5xx, an unparsable body

    def take(self, resp: httpx.Response | None) -> None:
        if resp is None:
            self.transport += 1
            return
        try:
            body = resp.json()
        except ValueError:
            self.other.append(f"{resp.status_code} {resp.text[:200]}")
            return
        if resp.status_code >= 500 or not isinstance(body, dict):
            self.other.append(f"{resp.status_code} {resp.text[:200]}")
        elif "result" in body and not body["result"].get("isError"):
            self.ok += 1
        elif "error" in body:
            error = body["error"]
            reason = str((error.get("data") or {}).get("reason") or error["code"])
            self.refused[reason] = self.refused.get(reason, 0) + 1
        else:
            self.other.append(f"{resp.status_code} {resp.text[:200]}")


def tool_call(msg_id: int, name: str = "echo", arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments if arguments is not None else {"text": f"call {msg_id}"}},
    }


async def _fire(targets: Sequence[str], key: str, timeout: float) -> list[httpx.Response | None]:
    limits = httpx.Limits(max_connections=len(targets) + 1)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one(i: int, url: str) -> httpx.Response | None:
            try:
                return await client.post(f"{url}/mcp", json=tool_call(i), headers={"X-API-Key": key})
            except httpx.TransportError:
                return None

        return list(await asyncio.gather(*(one(i, url) for i, url in enumerate(targets))))


def paid_calls(gateways: Sequence[Gateway], key: str, per_instance: int, timeout: float = 20.0) -> list[Answers]:
    """`per_instance` concurrent `echo` calls on each gateway, all in flight together; answers per gateway."""
    targets = [gw.url for _ in range(per_instance) for gw in gateways]
    replies = asyncio.run(_fire(targets, key, timeout))
    answers = [Answers() for _ in gateways]
    for i, resp in enumerate(replies):
        answers[i % len(gateways)].take(resp)
    return answers


def total(answers: Sequence[Answers]) -> Answers:
    out = Answers()
    for a in answers:
        out.ok += a.ok
        out.transport += a.transport
        out.other += a.other
        for reason, n in a.refused.items():
            out.refused[reason] = out.refused.get(reason, 0) + n
    return out


def credit_history(gw: Gateway, key: str) -> dict[str, Any]:
    resp = gw.client.get("/keys/credit-history", params={"key": key}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def balances(gateways: Sequence[Gateway], key: str) -> list[int | None]:
    """Each instance's balance of `key`; None where the instance does not know the key (yet)."""
    out: list[int | None] = []
    for gw in gateways:
        resp = gw.client.get("/balance", headers={"X-API-Key": key})
        out.append(int(resp.json()["credits"]) if resp.status_code == 200 else None)
    return out


def timed(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.005) -> float:
    """Seconds until `predicate` holds (polled); fails at the deadline."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start
