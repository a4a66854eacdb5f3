"""PayGate benchmark: the echo backend called directly vs through the gateway.

    .venv/bin/python bench/run.py [--duration 5] [--concurrency 1,16,64] [--rounds 1]
                                  [--modes direct,http,stdio] [--json out.json] [--no-pin]

One run starts the echo backend (bench/echo_backend.py) over HTTP, a gateway
in front of it in remote-HTTP mode and a second gateway wrapping the same
backend over stdio (both via the real CLI, each with its own SQLite file),
then, for every concurrency, measures direct → HTTP gateway → stdio gateway
back to back (alternating, so drift hits every column alike) with wrk and
bench/mcp_call.lua. wrk is pinned to one core, everything it measures to the
other. Each gateway cell uses two fresh keys and checks the accounting (see
mcp_call.lua): credits spent on key A must equal its successful calls exactly.
Only 127.0.0.1 is ever targeted; every cell is bounded by --duration.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processes import ECHO, HERE, PYTHON, Target, pinned, start_echo, start_gateway, stop

LUA = str(HERE / "mcp_call.lua")
CREDITS = 10**12  # far more than any cell can spend
MODES = ("direct", "http", "stdio")
# The Node predecessor on this machine (DESIGN.md, "Performance").
PREDECESSOR = {"http": {1: 1450, 16: 2200, 64: 2270}, "stdio": {1: 1940, 16: 4200, 64: 3300}}
PREDECESSOR_P99_C64 = {"http": 220.0, "stdio": 82.0}
PREDECESSOR_ADDED_P50 = {"http": 0.45, "stdio": 0.27}
PREDECESSOR_RSS = {"http": 133, "stdio": 230}


@dataclass
class Cell:
    mode: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    wrk_cpu: float
    server_cpu: float
    result: dict[str, Any]
    accounting: dict[str, Any] = field(default_factory=dict)
    rss_mib: float = 0.0
    hwm_mib: float = 0.0
    child_rss_mib: float = 0.0


# measurements -----------------------------------------------------------------------
def proc_status_mib(pid: int, field_name: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_json(method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def make_key(gw: Target, name: str) -> str:
    out = http_json("POST", gw.url + "/keys", {"X-Admin-Key": gw.admin_key}, {"name": name, "credits": CREDITS})
    return str(out["key"])


def balance(gw: Target, key: str) -> int:
    return int(http_json("GET", gw.url + "/balance", {"X-API-Key": key})["credits"])


def run_wrk(url: str, concurrency: int, duration: float, cpu: int | None, env: dict[str, str]) -> dict[str, Any]:
    seconds = max(1, round(duration))  # wrk takes whole seconds only
    argv = pinned(cpu, ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", LUA, url + "/mcp"])
    out = subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=duration + 60, check=False
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return dict(json.loads(line.removeprefix("BENCH_RESULT ")))
    raise RuntimeError(f"wrk printed no result (rc={out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")


def measure(t: Target, concurrency: int, duration: float, tail: float, cpu: int | None) -> Cell:
    env = {"BENCH_SWITCH_AFTER": str(max(duration - tail, duration / 2))}
    keys: tuple[str, str] | None = None
    if t.mode != "direct":
        keys = (make_key(t, "bench-A"), make_key(t, "bench-B"))
        env |= {"BENCH_KEY_A": keys[0], "BENCH_KEY_B": keys[1]}
    pids = [t.proc.pid, *children_of(t.proc.pid)]
    cpu0 = sum(cpu_seconds(p) for p in pids)
    wrk0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = run_wrk(t.url, concurrency, duration, cpu, env)
    wrk1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = sum(cpu_seconds(p) for p in pids)
    wall = res["duration_us"] / 1e6
    cell = Cell(
        t.mode,
        concurrency,
        res["requests"] / wall,
        res["p50_us"] / 1000,
        res["p99_us"] / 1000,
        wrk_cpu=(wrk1.ru_utime + wrk1.ru_stime - wrk0.ru_utime - wrk0.ru_stime) / wall,
        server_cpu=(cpu1 - cpu0) / wall,
        result=res,
    )
    if keys is not None:
        time.sleep(0.3)  # let requests wrk abandoned at its deadline finish (they are key B's)
        spent_a, spent_b = CREDITS - balance(t, keys[0]), CREDITS - balance(t, keys[1])
        cell.accounting = {
            "spent_a": spent_a,
            "ok_a": res["ok_a"],
            "spent_b": spent_b,
            "ok_b": res["ok_b"],
            "exact": spent_a == res["ok_a"] and res["bad"] == 0,
            "tail_ok": 0 <= spent_b - res["ok_b"] <= concurrency,
        }
        cell.rss_mib = proc_status_mib(t.proc.pid, "VmRSS")
        cell.hwm_mib = proc_status_mib(t.proc.pid, "VmHWM")
        cell.child_rss_mib = sum(proc_status_mib(p, "VmRSS") for p in children_of(t.proc.pid))
    return cell


# report ------------------------------------------------------------------------------
def median_cell(cells: list[Cell]) -> Cell:
    """The round with the median throughput (so its p50/p99 belong to the same run)."""
    ordered = sorted(cells, key=lambda c: c.rps)
    return ordered[len(ordered) // 2]


def report(cells: dict[tuple[str, int], list[Cell]], concurrencies: list[int], modes: list[str]) -> str:
    best = {k: median_cell(v) for k, v in cells.items()}
    head = "| | " + " | ".join(f"c={c}" for c in concurrencies) + " |"
    rows = [head, "| --- |" + " --- |" * len(concurrencies)]
    names = {"direct": "echo backend direct", "http": "gateway, remote HTTP", "stdio": "gateway, stdio"}
    for mode in modes:
        rows.append(
            f"| {names[mode]}: req/s (p50 / p99 ms) | "
            + " | ".join(
                f"{best[(mode, c)].rps:,.0f} ({best[(mode, c)].p50_ms:.2f} / {best[(mode, c)].p99_ms:.2f})"
                for c in concurrencies
            )
            + " |"
        )
    for mode in modes:
        if mode == "direct":
            continue
        rows.append(
            f"| {mode}: x predecessor req/s | "
            + " | ".join(
                f"{best[(mode, c)].rps / PREDECESSOR[mode][c]:.2f}x" if c in PREDECESSOR[mode] else "-"
                for c in concurrencies
            )
            + " |"
        )
    for mode in modes:
        if mode == "direct":
            continue
        rows.append(
            f"| {mode}: % of direct req/s | "
            + " | ".join(
                f"{100 * best[(mode, c)].rps / best[('direct', c)].rps:.0f}%" if "direct" in modes else "-"
                for c in concurrencies
            )
            + " |"
        )
    lines = ["\n".join(rows), ""]
    if "direct" in modes:
        for mode in modes:
            if mode != "direct":
                c = concurrencies[0]
                added = best[(mode, c)].p50_ms - best[("direct", c)].p50_ms
                lines.append(
                    f"added p50 at c={c}, {mode}: {added:+.3f} ms (predecessor {PREDECESSOR_ADDED_P50[mode]:+.2f} ms)"
                )
    for mode in modes:
        if mode == "direct":
            continue
        all_cells = [c for (m, _), v in cells.items() if m == mode for c in v]
        hwm = max(c.hwm_mib for c in all_cells)
        child = max(c.child_rss_mib for c in all_cells)
        extra = f", backend child {child:.0f} MiB" if child else ""
        lines.append(f"gateway RSS, {mode}: peak {hwm:.0f} MiB{extra} (predecessor {PREDECESSOR_RSS[mode]} MiB)")
        exact = all(c.accounting["exact"] for c in all_cells)
        tail = all(c.accounting["tail_ok"] for c in all_cells)
        paid = sum(c.accounting["spent_a"] + c.accounting["spent_b"] for c in all_cells)
        lines.append(
            f"accounting, {mode}: {'EXACT' if exact else 'MISMATCH'} on key A in every cell"
            f"{'' if tail else ' (key B tail out of bounds!)'}; {paid:,} credits charged in all"
        )
    cpu = [
        f"{c.mode}/c={c.concurrency}: wrk {100 * c.wrk_cpu:.0f}%, server {100 * c.server_cpu:.0f}%"
        for c in best.values()
    ]
    lines.append("CPU (one core = 100%): " + "; ".join(cpu))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=5, help="whole seconds per cell (default 5)")
    p.add_argument("--concurrency", default="1,16,64", help="comma-separated connection counts")
    p.add_argument("--rounds", type=int, default=1, help="repeat the whole grid; the median round is shown")
    p.add_argument("--modes", default=",".join(MODES), help="subset of direct,http,stdio")
    p.add_argument(
        "--tail",
        type=float,
        default=1.5,
        help="seconds before the end when wrk switches from key A to key B (see mcp_call.lua)",
    )
    p.add_argument("--warmup", type=int, default=1, help="whole seconds of load per target before measuring (0: none)")
    p.add_argument("--wrk-cpu", type=int, default=0, help="core for wrk (default 0)")
    p.add_argument("--server-cpu", type=int, default=1, help="core for gateway + backend (default 1)")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--json", dest="json_out", help="also write every cell as JSON to this file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (SQLite files, stderr logs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    if unknown := set(modes) - set(MODES):
        print(f"unknown modes: {sorted(unknown)}", file=sys.stderr)
        return 2
    wrk_cpu = None if args.no_pin else args.wrk_cpu
    srv_cpu = None if args.no_pin else args.server_cpu
    tmp = Path(tempfile.mkdtemp(prefix="paygate-bench-"))
    targets: dict[str, Target] = {}
    started = time.time()
    try:
        echo = start_echo(tmp, srv_cpu)
        targets["direct"] = echo
        if "http" in modes:
            targets["http"] = start_gateway("http", ["--remote-url", f"{echo.url}/mcp"], tmp, srv_cpu)
        if "stdio" in modes:
            targets["stdio"] = start_gateway("stdio", ["--server", f"{PYTHON} {ECHO} --stdio"], tmp, srv_cpu)
        for mode in modes:
            if args.warmup > 0:
                measure(targets[mode], max(concurrencies), args.warmup, 0, wrk_cpu)
        cells: dict[tuple[str, int], list[Cell]] = {}
        for rnd in range(args.rounds):
            for c in concurrencies:
                for mode in modes:
                    cell = measure(targets[mode], c, args.duration, args.tail, wrk_cpu)
                    cells.setdefault((mode, c), []).append(cell)
                    acct = cell.accounting
                    print(
                        f"round {rnd + 1} c={c:<3} {mode:<6} {cell.rps:9,.0f} req/s  p50 {cell.p50_ms:6.2f} ms"
                        f"  p99 {cell.p99_ms:7.2f} ms  wrk {100 * cell.wrk_cpu:3.0f}%"
                        f"  server {100 * cell.server_cpu:3.0f}%"
                        + (
                            f"  RSS {cell.rss_mib:5.1f} MiB  A: spent {acct['spent_a']} ok {acct['ok_a']}"
                            f" {'exact' if acct['exact'] else 'MISMATCH'}"
                            if acct
                            else ""
                        )
                        + (f"  bad={cell.result['bad']} {cell.result['bad_sample']}" if cell.result["bad"] else ""),
                        flush=True,
                    )
        print()
        print(
            f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
            f"{time.strftime('%Y-%m-%d %H:%M')} · {args.duration:g}s per cell · {args.rounds} round(s) · "
            f"total {time.time() - started:.0f}s"
        )
        print(report(cells, concurrencies, modes))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps([vars(c) for v in cells.values() for c in v], indent=1))
        failed = any(
            c.accounting and not (c.accounting["exact"] and c.accounting["tail_ok"]) for v in cells.values() for c in v
        )
        return 1 if failed else 0
    finally:
        clean_up([t.proc for t in targets.values()], tmp, args.keep)


def clean_up(procs: list[subprocess.Popen[str]], tmp: Path, keep: bool) -> None:
    """Stop what a run started and remove its temp dir (unless asked to keep it)."""
    for proc in procs:
        stop(proc)
    if keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
