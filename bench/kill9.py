"""Acknowledged charges survive `kill -9` under load (group commit included).

    .venv/bin/python bench/kill9.py [--concurrency 64] [--after 2]

For each gateway mode: wrk loads the gateway (as in run.py), the gateway is
SIGKILLed mid-run, restarted on the same SQLite file, and the credits spent
are compared with the successful answers wrk received. Every acknowledged
charge must be on disk (spent >= acknowledged); at most the calls in flight
may have been charged without an answer (spent <= acknowledged + connections).
Exit status 1 if either bound is broken.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import processes  # bench/ is not a package: found through sys.path
import run


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--after", type=float, default=2.0, help="seconds of load before the kill")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="paygate-kill9-"))
    failed = False
    try:
        for mode in ("http", "stdio"):
            echo = processes.start_echo(tmp, 1)
            backend = (
                ["--remote-url", f"{echo.url}/mcp"]
                if mode == "http"
                else ["--server", f"{processes.PYTHON} {processes.ECHO} --stdio"]
            )
            gw = processes.start_gateway(mode, backend, tmp, 1)
            key = run.make_key(gw, "kill9")
            env = {**os.environ, "BENCH_KEY_A": key, "BENCH_KEY_B": key}
            wrk = subprocess.Popen(
                processes.pinned(
                    0,
                    [
                        "wrk",
                        "-t1",
                        f"-c{args.concurrency}",
                        f"-d{int(args.after) + 3}s",
                        "-s",
                        run.LUA,
                        gw.url + "/mcp",
                    ],
                ),
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            time.sleep(args.after)
            children = run.children_of(gw.proc.pid)
            gw.proc.send_signal(signal.SIGKILL)
            gw.proc.wait()
            out, _ = wrk.communicate(timeout=60)
            res = json.loads(
                next(line for line in out.splitlines() if line.startswith("BENCH_RESULT ")).removeprefix(
                    "BENCH_RESULT "
                )
            )
            acknowledged = res["ok_a"] + res["ok_b"]
            again = processes.start_gateway(mode, backend, tmp, 1)
            spent = run.CREDITS - run.balance(again, key)
            ok = acknowledged <= spent <= acknowledged + args.concurrency
            failed |= not ok
            print(
                f"{mode}: {acknowledged:,} answered before kill -9, {spent:,} charged on disk after restart "
                f"({spent - acknowledged} in flight) -> {'OK' if ok else 'BROKEN'}"
            )
            processes.stop(again.proc)
            processes.stop(echo.proc)
            for pid in children:  # an orphaned stdio server exits on EOF; make sure (if it is still ours)
                with contextlib.suppress(OSError):
                    if b"echo_backend.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        os.kill(pid, signal.SIGTERM)
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
