"""The gateway's own CPU per tools/call for two source trees, alternating: the A/B that finds a regression.

    .venv/bin/python bench/cpu_ab.py --a /path/to/old/src --b src [--modes http,stdio] [--concurrency 1,64]
                                     [--rounds 3] [--duration 4]

Each tree runs through this venv's real CLI (`PYTHONPATH=<tree>`, so both need the same dependencies), pinned
to CPU 0 with the shared benchmark's Node echo backends (../shared/bench/backends), a state file, a key and an
MCP session, as `../shared/bench/compare.sh` does; wrk (CPU 1, the shared harness's tools_call.lua) warms up for
2 s, then loads it for `--duration` seconds while the gateway's CPU time is read from /proc. One line per
measurement; builds alternate within each round, so drift on a shared machine hits both alike. CPU per call
is what a req/s figure hides: the backend and wrk are not in it (compare.sh gives it for whole runs only).
This is how issue 13 found that writing every charge at once cost ~55 µs a call at 64 connections.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "bench"
CLI = str(Path(sys.executable).parent / "paygate-mcp")
ADMIN = "cpu-ab-admin-key-0123456789"
TICKS = os.sysconf("SC_CLK_TCK")


def post(url: str, body: object, headers: dict[str, str]) -> tuple[dict[str, str], object]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(answer.headers), json.loads(answer.read() or b"null")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited ({proc.returncode})")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the gateway did not answer /health")


def measure(tree: str, mode: str, concurrency: int, duration: int, backend_port: int) -> tuple[float, float]:
    """(req/s, µs of gateway CPU per call) for one gateway started from `tree`."""
    work = Path(tempfile.mkdtemp(prefix="cpu-ab-"))
    port = 18700 + os.getpid() % 200
    source = (
        ["--remote-url", f"http://127.0.0.1:{backend_port}/mcp"]
        if mode == "http"
        else ["--server", f"node {SHARED / 'backends' / 'stdio_echo.js'}"]
    )
    argv = ["taskset", "-c", "0", CLI, "wrap", *source, "--port", str(port), "--admin-key", ADMIN]
    argv += ["--price", "1", "--rate-limit", "0", "--state-file", str(work / "state.db")]
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve()), "HOME": str(work)}
    proc = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port, proc)
        base = f"http://127.0.0.1:{port}"
        _, created = post(f"{base}/keys", {"name": "cpu-ab", "credits": 100_000_000}, {"x-admin-key": ADMIN})
        key = created["key"]  # type: ignore[index]
        hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "cpu-ab", "version": "1"}}
        headers, _ = post(
            f"{base}/mcp",
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": hello},
            {"x-api-key": key, "accept": "application/json, text/event-stream"},
        )
        session = next(v for k, v in headers.items() if k.lower() == "mcp-session-id")
        wrk_env = {**os.environ, "BENCH_KEY": key, "BENCH_SESSION": session, "BENCH_RESULT": str(work / "wrk.json")}

        def load(seconds: int, tag: str) -> int:
            wrk = ["taskset", "-c", "1", "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s"]
            wrk += ["-s", str(SHARED / "tools_call.lua"), f"{base}/mcp"]
            subprocess.run(wrk, env={**wrk_env, "BENCH_TAG": tag}, check=True, capture_output=True)
            return int(json.loads((work / "wrk.json").read_text())["ok"])

        load(2, "warm")
        before = cpu_seconds(proc.pid)
        ok = load(duration, "measured")
        used = cpu_seconds(proc.pid) - before
        return ok / duration, 1e6 * used / max(ok, 1)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="source tree A (the directory holding paygate/)")
    p.add_argument("--b", required=True, help="source tree B")
    p.add_argument("--modes", default="http,stdio")
    p.add_argument("--concurrency", default="1,64")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=4)
    args = p.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 1
    backend = subprocess.Popen(
        ["taskset", "-c", "0", "node", str(SHARED / "backends" / "http_echo.js"), "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert backend.stdout is not None
        backend_port = int(backend.stdout.readline().split()[1])  # "READY <port>"
        for round_no in range(1, args.rounds + 1):
            for mode in args.modes.split(","):
                for concurrency in map(int, args.concurrency.split(",")):
                    for name, tree in (("A", args.a), ("B", args.b)):
                        rate, cpu = measure(tree, mode, concurrency, args.duration, backend_port)
                        cell = f"round {round_no} {mode:5} c={concurrency:<3} {name}"
                        print(f"{cell}: {rate:8,.0f} req/s  {cpu:6.0f} µs CPU/call")
                        sys.stdout.flush()
    finally:
        backend.terminate()
        backend.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
