"""Concurrency limits and the priority queue through the real CLI, in front of a real stdio server whose
calls run concurrently and end when the test says (tests/servers/limits_server.py): parallel calls over
a limit get -32005 with Retry-After and are not charged; with the queue on, waiting calls run in the
order of their keys' tiers."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import PYTHON, ROOT, Gateway, running_gateway, text_of, wait_until, write_config

pytestmark = pytest.mark.e2e

SERVER = f"{PYTHON} {ROOT / 'tests' / 'servers' / 'limits_server.py'}"


def call(gw: Gateway, key: str, tool: str, **arguments: Any) -> httpx.Response:
    return gw.rpc("tools/call", {"name": tool, "arguments": arguments}, key=key)


def in_background(pool: ThreadPoolExecutor, gw: Gateway, key: str, label: str) -> Future[httpx.Response]:
    """`hold(label)` on a connection of its own: the future is its answer."""

    def run() -> httpx.Response:
        with httpx.Client(base_url=gw.url, timeout=60) as client:
            params = {"name": "hold", "arguments": {"label": label}}
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
            return client.post("/mcp", json=body, headers={"X-API-Key": key})

    return pool.submit(run)


def admin_view(gw: Gateway, path: str) -> dict[str, Any]:
    resp = gw.client.get(path, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_limits_refuse_parallel_calls_then_the_queue_runs_waiters_by_tier(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "maxConcurrentPerKey": 1,
            "maxConcurrentPerTool": 1,
            "priorityQueue": {
                "enabled": False,
                "promoteAfterMs": 0,
                "maxWaitMs": dict.fromkeys(("critical", "high", "normal", "low", "background"), 60_000),
            },
        },
    )
    with (
        running_gateway("--server", SERVER, "--rate-limit", "0", "--config", config) as gw,
        ThreadPoolExecutor(8) as pool,
    ):
        names = ("holder", "low", "normal", "high", "critical", "other", "releaser")
        keys = {name: gw.create_key(10, name=name) for name in names}

        # the queue off: over a limit is -32005 at once, with Retry-After, and costs nothing
        held = in_background(pool, gw, keys["holder"], "first")
        wait_until(lambda: admin_view(gw, "/admin/concurrency")["inFlight"]["total"] == 1, what="one call in flight")
        same_key = call(gw, keys["holder"], "sleep", seconds=0)
        error = same_key.json()["error"]
        assert error["code"] == -32005 and error["data"]["limit"] == "key"
        assert int(same_key.headers["Retry-After"]) >= 1
        same_tool = call(gw, keys["other"], "hold", label="never")
        assert same_tool.json()["error"]["data"]["limit"] == "tool" and int(same_tool.headers["Retry-After"]) >= 1
        assert text_of(call(gw, keys["other"], "sleep", seconds=0.01).json()) == "slept 0.01"  # its own slots
        assert (gw.balance(keys["holder"]), gw.balance(keys["other"])) == (9, 9)
        assert text_of(call(gw, keys["releaser"], "release", label="first").json()) == "release first"
        assert text_of(held.result(30).json()) == "released first"
        rejections = admin_view(gw, "/admin/concurrency")["rejections"]
        assert rejections["key"]["immediate"] == 1 and rejections["tool"]["immediate"] == 1

        # a burst of parallel calls of one tool: whichever comes first holds the slot, the rest are refused
        burst = [gw.create_key(10) for _ in range(6)]
        answers = [in_background(pool, gw, key, "burst") for key in burst]
        wait_until(lambda: sum(f.done() for f in answers) == 5, what="five refusals")
        refused = [f.result() for f in answers if f.done()]
        assert all(r.json()["error"]["code"] == -32005 and int(r.headers["Retry-After"]) >= 1 for r in refused)
        call(gw, keys["releaser"], "release", label="burst")
        assert sum("result" in f.result(30).json() for f in answers) == 1
        assert sorted(gw.balance(key) for key in burst) == [9, 10, 10, 10, 10, 10]

        # the queue on: waiters get the tool's slot by tier, whatever order they came in
        tiers = {keys[t]: t for t in ("low", "high", "critical")}
        resp = gw.client.post("/admin/priority-queue", headers=gw.admin(), json={"enabled": True, "keyTiers": tiers})
        assert resp.status_code == 200, resp.text
        held = in_background(pool, gw, keys["holder"], "second")
        wait_until(lambda: admin_view(gw, "/admin/concurrency")["inFlight"]["total"] == 1, what="the holder")
        order = ("low", "normal", "high", "critical")
        for name in order:  # released in advance: each answers as soon as it runs
            call(gw, keys["releaser"], "release", label=name)
        waiting = []
        for count, name in enumerate(order, 1):
            waiting.append(in_background(pool, gw, keys[name], name))
            wait_until(
                lambda count=count: admin_view(gw, "/admin/priority-queue")["queued"]["total"] == count,  # type: ignore[misc]
                what=f"{count} calls waiting",
            )
        assert all(gw.balance(keys[name]) == 10 for name in order)  # nobody charged while waiting
        call(gw, keys["releaser"], "release", label="second")
        for future in (held, *waiting):
            assert future.result(30).json()["result"]["isError"] is False
        started = text_of(call(gw, keys["releaser"], "started").json())
        assert started == "first,burst,second,critical,high,normal,low"
        assert all(gw.balance(keys[name]) == 9 for name in order)
        stats = admin_view(gw, "/admin/priority-queue")["stats"]
        assert stats["waits"] == 4 and stats["timeouts"] == 0
        metrics = gw.client.get("/metrics").text
        assert 'paygate_priority_queue_waits_total{outcome="granted",tier="critical"} 1.0' in metrics
        assert 'paygate_concurrency_rejections_total{cause="immediate",limit="tool"} 6.0' in metrics
