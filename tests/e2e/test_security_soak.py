"""A bounded soak under hostile load, through the real CLI: idle, slowloris, oversized-header, batch-amplifying
and session-flooding strangers (tests/hostile.py, each from its own loopback address) all at once, while a
paying client keeps calling a tool. The paying client must be served every time with a bounded p99, its credits
must come out exact, and the gateway's memory must stay bounded. Its figures are quoted in docs/security.md.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests import hostile
from tests.support import ECHO_COMMAND, Gateway, running_gateway

SOAK_SECONDS = 10.0
LIMITS = {
    "headersTimeoutMs": 2000,
    "keepAliveTimeoutMs": 5000,
    "maxConnectionsPerAddress": 64,
    "maxAnonymousSessions": 50,
    "maxBatchSize": 100,
    "maxBatchResponseBytes": 1_048_576,
}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def run_strangers(port: int, stop: threading.Event, tally: hostile.Tally) -> None:
    async def main() -> None:
        halt = asyncio.Event()
        attacks = [
            hostile.idle(port, "127.0.0.2", 200, tally, halt),
            hostile.slowloris(port, "127.0.0.3", 100, tally, halt),
            hostile.big_header(port, "127.0.0.4", 4, tally, halt),
            hostile.amplifier(port, "127.0.0.5", 100, tally, halt),
            hostile.session_flood(port, "127.0.0.6", tally, halt),
            hostile.session_flood(port, "127.0.0.7", tally, halt),
        ]
        tasks = [asyncio.ensure_future(a) for a in attacks]
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        halt.set()
        await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def paying_calls(gw: Gateway, key: str, until: float, latencies: list[float], failures: list[Any]) -> None:
    with httpx.Client(base_url=gw.url, timeout=10.0, headers={"X-API-Key": key}) as client:
        init = client.post(
            "/mcp",
            json={
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "p", "version": "1"},
                },
            },
        )
        session = {"Mcp-Session-Id": init.headers["mcp-session-id"]}
        n = 0
        while time.monotonic() < until:
            n += 1
            body = {
                "jsonrpc": "2.0",
                "id": n,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "hi"}},
            }
            started = time.perf_counter()
            try:
                resp = client.post("/mcp", json=body, headers=session)
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
                continue
            latencies.append(time.perf_counter() - started)
            if resp.status_code != 200 or "result" not in resp.json():
                failures.append((resp.status_code, resp.text[:200]))


def test_a_paying_client_is_served_while_strangers_attack(tmp_path: Path) -> None:
    config = tmp_path / "limits.json"
    config.write_text(json.dumps(LIMITS))
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", str(config)) as gw:
        key = gw.create_key(1_000_000)
        pid = gw.proc.pid
        rss_before = rss_mib(pid)
        stop, tally = threading.Event(), hostile.Tally()
        strangers = threading.Thread(target=run_strangers, args=(gw.port, stop, tally), daemon=True)
        strangers.start()
        rss_peak = rss_before
        latencies: list[float] = []
        failures: list[Any] = []
        sampler_stop = threading.Event()

        def sample() -> None:
            nonlocal rss_peak
            while not sampler_stop.wait(0.25):
                rss_peak = max(rss_peak, rss_mib(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            paying_calls(gw, key, time.monotonic() + SOAK_SECONDS, latencies, failures)
        finally:
            stop.set()
            strangers.join(60)
            assert not strangers.is_alive()
            sampler_stop.set()
            sampler.join(5)

        assert latencies, failures[:5]
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        print(
            f"\nsoak {SOAK_SECONDS:.0f}s: {len(latencies)} paid calls, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"RSS {rss_before:.0f} -> peak {rss_peak:.0f} MiB\n"
            f"opened {dict(tally.opened)}\nclosed by server {dict(tally.closed_by_server)}\n"
            f"refused {dict(tally.refused)}\nstatuses {dict(tally.statuses)}"
        )
        assert not failures, failures[:5]
        assert len(latencies) >= 100, "the paying client was starved"
        assert p99 < 1000, f"p99 {p99:.0f} ms"
        assert rss_peak - rss_before < 150, f"RSS grew {rss_peak - rss_before:.0f} MiB"
        # The defences were hit, not merely idle: silent and dribbling connections were closed by the server,
        # the giant batch was refused, and the gateway still answers at once.
        assert tally.closed_by_server["idle"] > 0 and tally.closed_by_server["slowloris"] > 0, tally
        assert tally.statuses["amplifier18000:400"] > 0, tally.statuses
        assert gw.balance(key) == 1_000_000 - len(latencies)  # no failures, so every call was answered
        assert gw.client.get("/health").status_code == 200
