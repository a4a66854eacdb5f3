"""The response cache and dedup through the real CLI (`paygate-mcp wrap`) in front of a real stdio MCP server
(tests/servers/cache_server.py) that counts its own runs: a hit and a replay do not reach the server and are
not charged; concurrent duplicates under one X-Idempotency-Key run it once."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any

import httpx

from tests.support import PYTHON, ROOT, Gateway, running_gateway, text_of, write_config

CACHE_SERVER = f"{PYTHON} {ROOT / 'tests' / 'servers' / 'cache_server.py'}"


def call(gw: Gateway, key: str, tool: str, arguments: dict[str, Any], idem: str | None = None) -> httpx.Response:
    headers = {"X-Idempotency-Key": idem} if idem else None
    resp = gw.rpc("tools/call", {"name": tool, "arguments": arguments}, key=key, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp


def server_runs(gw: Gateway, key: str) -> int:
    return int(text_of(call(gw, key, "invocations", {}).json()))


def test_hits_and_replays_never_reach_the_server_nor_cost(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "cacheTtlSeconds": 60,
            "dedupEnabled": True,
            "defaultCreditsPerCall": 2,
            "toolPricing": {"invocations": {"cacheTtlSeconds": 0, "creditsPerCall": 0}},
        },
    )
    with running_gateway("--server", CACHE_SERVER, "--config", config, "--rate-limit", "0") as gw:
        key = gw.create_key(100)
        first = call(gw, key, "lookup", {"q": "a"})
        assert first.headers["x-cache"] == "MISS" and text_of(first.json()) == "a#1"
        again = call(gw, key, "lookup", {"q": "a"})
        assert again.headers["x-cache"] == "HIT" and text_of(again.json()) == "a#1"
        assert server_runs(gw, key) == 1 and gw.balance(key) == 98

        # three concurrent duplicates under one idempotency key: one run, one charge, one answer
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            replies = list(
                pool.map(
                    lambda _: httpx.post(
                        f"{gw.url}/mcp",
                        json={
                            "jsonrpc": "2.0",
                            "id": 1,
                            "method": "tools/call",
                            "params": {"name": "slow_lookup", "arguments": {"q": "b", "seconds": 0.5}},
                        },
                        headers={"X-API-Key": key, "X-Idempotency-Key": "job-42"},
                        timeout=30,
                    ),
                    range(3),
                )
            )
        assert {text_of(r.json()) for r in replies} == {"b#2"}
        assert server_runs(gw, key) == 2 and gw.balance(key) == 96
        retry = call(gw, key, "slow_lookup", {"q": "b", "seconds": 0.5}, idem="job-42")  # e.g. after a dropped stream
        assert retry.headers["x-idempotent-replay"] == "true" and text_of(retry.json()) == "b#2"
        conflict = call(gw, key, "lookup", {"q": "c"}, idem="job-42").json()
        assert conflict["error"]["code"] == -32602

        assert gw.client.delete("/admin/cache", params={"tool": "lookup"}, headers=gw.admin()).json()["cleared"] == 1
        assert text_of(call(gw, key, "lookup", {"q": "a"}).json()) == "a#3"
        assert server_runs(gw, key) == 3 and gw.balance(key) == 94
        view = gw.client.get("/admin/cache", headers=gw.admin()).json()
        assert view["tools"]["lookup"]["hits"] == 1 and view["hits"] >= 1
        dedup = gw.client.get("/admin/dedup", headers=gw.admin()).json()
        assert dedup["coalesced"] == 2 and dedup["hits"] == 1 and dedup["creditsSaved"] == 6 and dedup["conflicts"] == 1
        assert [e["data"]["tool"] for e in gw.events("cache.cleared")] == ["lookup"]
