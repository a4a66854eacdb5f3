"""Where does the gateway's time go? Load one gateway with wrk and sample it with py-spy.

    .venv/bin/pip install py-spy
    .venv/bin/python bench/spy.py --mode stdio --concurrency 16 --duration 8 [--top 40] [--native]

Prints the functions with the most samples, by self time and inclusive time
(collapsed stacks are kept in the temp dir with --keep for a flame graph).
Uses the same processes, pinning and wrk script as run.py.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import processes  # bench/ is not a package: found through sys.path
import run


def summarize(collapsed: Path, top: int) -> str:
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        count = int(count_s)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")" if " (" in f else f
            for f in stack.split(";")
        ]
        total += count
        if frames:
            self_t[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    out = [f"{total} samples", "", "self:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_t.most_common(top)]
    out += ["", "inclusive:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in incl.most_common(top)]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("http", "stdio"), default="stdio")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--native", action="store_true", help="include C frames (py-spy --native)")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    tmp = Path(tempfile.mkdtemp(prefix="paygate-profile-"))
    targets: list[processes.Target] = []
    try:
        echo = processes.start_echo(tmp, 1)
        targets.append(echo)
        backend = (
            ["--remote-url", f"{echo.url}/mcp"]
            if args.mode == "http"
            else ["--server", f"{processes.PYTHON} {processes.ECHO} --stdio"]
        )
        gw = processes.start_gateway(args.mode, backend, tmp, 1)
        targets.append(gw)
        run.measure(gw, args.concurrency, 1.0, 0, 0)  # warm up
        out = tmp / "stacks.txt"
        cmd = [
            spy,
            "record",
            "--pid",
            str(gw.proc.pid),
            "--duration",
            str(int(args.duration - 2)),
            "--format",
            "raw",
            "--output",
            str(out),
            "--rate",
            "500",
            "--nonblocking",
        ]
        if args.native:
            cmd.append("--native")
        spy_proc = threading.Thread(target=subprocess.run, args=(cmd,), kwargs={"capture_output": True, "check": False})
        spy_proc.start()
        cell = run.measure(gw, args.concurrency, args.duration, 1.5, 0)
        spy_proc.join()
        print(
            f"{args.mode} c={args.concurrency}: {cell.rps:,.0f} req/s under py-spy "
            f"(p50 {cell.p50_ms:.2f} ms, accounting exact: {cell.accounting['exact']})"
        )
        print(summarize(out, args.top))
        return 0
    finally:
        run.clean_up([t.proc for t in targets], tmp, args.keep)


if __name__ == "__main__":
    sys.exit(main())
