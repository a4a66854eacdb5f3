"""Tool-call latency with a webhook receiver that is healthy, hanging, or down.

    .venv/bin/python bench/webhook_load.py [--duration 5] [--concurrency 16] [--rounds 1]

For each receiver state, one gateway (real CLI, stdio echo backend, its own SQLite file) is
loaded with wrk; every call's usage event goes to the webhook URL:

- none:    no webhook configured (the baseline);
- healthy: a receiver on 127.0.0.1 that answers 200 at once;
- hanging: a receiver that accepts connections and never answers (each delivery waits for
           its timeout, then retries);
- down:    nothing listens on the port (connection refused; retries, then dead letters).

Reported: req/s and p50 / p99 per state. Then, for the hanging and down states, the receiver
is made healthy, dead letters are replayed, and the run checks that every call's usage event
arrives exactly once (no event lost while the receiver was away). Only 127.0.0.1 is targeted;
every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processes import PYTHON, Target, start_gateway, stop  # the main benchmark's processes
from run import balance, http_json, make_key, run_wrk  # and its wrk and admin API helpers

ECHO = str(Path(__file__).resolve().parent / "echo_backend.py")
STATES = ("none", "healthy", "hanging", "down")


class Receiver:
    """A webhook receiver on 127.0.0.1 in a thread: `healthy` answers 200, `hanging` never answers,
    `down` closes its listening socket. Counts usage events by request id (duplicates show up)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.mode = "down"
        self.request_ids: dict[str, int] = {}
        self.posts = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        threading.Thread(target=self._loop.run_forever, daemon=True).start()

    def set_mode(self, mode: str) -> None:
        asyncio.run_coroutine_threadsafe(self._set_mode(mode), self._loop).result(10)

    async def _set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == "down" and self._server is not None:
            self._server.close()
            self._server = None
        elif mode != "down" and self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                if self.mode != "healthy":
                    await asyncio.sleep(3600)  # hanging: the gateway's timeout ends it
                self.posts += 1
                for event in json.loads(body).get("events", []):
                    rid = str(event.get("requestId"))
                    self.request_ids[rid] = self.request_ids.get(rid, 0) + 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        self.set_mode("down")
        self._loop.call_soon_threadsafe(self._loop.stop)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_for(state: str, receiver: Receiver, tmp: Path, cpu: int | None) -> Target:
    config = {
        "webhookFlushSeconds": 0.5,
        "webhookRetryBaseSeconds": 0.2,
        "webhookMaxRetries": 3,
        "webhookTimeoutSeconds": 1,
        "webhookAllowPrivate": True,
    }
    if state != "none":
        config["webhookUrl"] = f"http://127.0.0.1:{receiver.port}/hook"
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"{state}.json"
    path.write_text(json.dumps(config))
    return start_gateway(state, ["--server", f"{PYTHON} {ECHO} --stdio", "--config", str(path)], tmp, cpu)


def stats(gw: Target) -> dict[str, Any]:
    return dict(http_json("GET", gw.url + "/webhooks/stats", {"X-Admin-Key": gw.admin_key}))


def wait_delivered(gw: Target, receiver: Receiver, expected: int, timeout: float) -> bool:
    """Make the receiver healthy, replay dead letters, wait for `expected` distinct events."""
    receiver.set_mode("healthy")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stats(gw).get("deadLetterCount"):
            http_json("POST", gw.url + "/webhooks/replay", {"X-Admin-Key": gw.admin_key}, {})
        if len(receiver.request_ids) >= expected:
            return True
        time.sleep(0.2)
    return False


def run_state(state: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    receiver = Receiver()
    receiver.set_mode("healthy" if state == "healthy" else "hanging" if state == "hanging" else "down")
    cpu = None if args.no_pin else args.server_cpu
    gw = gateway_for(state, receiver, tmp, cpu)
    try:
        keys = (make_key(gw, "bench-A"), make_key(gw, "bench-B"))
        env = {"BENCH_KEY_A": keys[0], "BENCH_KEY_B": keys[1], "BENCH_SWITCH_AFTER": str(args.duration)}
        res = run_wrk(gw.url, args.concurrency, args.duration, None if args.no_pin else args.wrk_cpu, env)
        wall = res["duration_us"] / 1e6
        calls = sum(10**12 - balance(gw, k) for k in keys)  # every answered call was charged 1 credit
        out: dict[str, Any] = {
            "state": state,
            "rps": res["requests"] / wall,
            "p50_ms": res["p50_us"] / 1000,
            "p99_ms": res["p99_us"] / 1000,
            "calls": calls,
        }
        if state != "none":
            out["statsAfterLoad"] = stats(gw)
            out["allDelivered"] = wait_delivered(gw, receiver, calls, args.settle)
            out["received"] = len(receiver.request_ids)
            out["duplicates"] = sum(n - 1 for n in receiver.request_ids.values())
        return out
    finally:
        stop(gw.proc)
        receiver.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=5, help="whole seconds of load per state")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--states", default=",".join(STATES))
    p.add_argument("--settle", type=float, default=120.0, help="max seconds to wait for late deliveries")
    p.add_argument("--wrk-cpu", type=int, default=0)
    p.add_argument("--server-cpu", type=int, default=1)
    p.add_argument("--no-pin", action="store_true")
    args = p.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="paygate-webhook-bench-") as tmp:
        for r in range(args.rounds):
            for state in args.states.split(","):
                row = run_state(state, args, Path(tmp) / f"{state}-{r}")
                ok &= row.get("allDelivered", True) and not row.get("duplicates")
                extra = (
                    f", delivered {row['received']:,}/{row['calls']:,}, duplicates {row['duplicates']}"
                    if state != "none"
                    else ""
                )
                print(
                    f"{state:8s} {row['rps']:9,.0f} req/s  p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:7.2f} ms"
                    f"  calls {row['calls']:,}{extra}",
                    flush=True,
                )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
