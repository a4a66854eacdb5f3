"""The benchmark's processes: the echo backend and gateways it starts (through the real CLI), pinned to a
core with taskset, waited for by their first line, and stopped. Shared by run.py, kill9.py, spy.py and
webhook_load.py (bench/ is not a package: found through sys.path).
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
CLI = str(Path(sys.executable).parent / "paygate-mcp")
ECHO = str(HERE / "echo_backend.py")


@dataclass
class Target:
    mode: str
    proc: subprocess.Popen[str]
    port: int
    admin_key: str = ""
    stderr_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def wait_line(proc: subprocess.Popen[str], predicate: Any, what: str, timeout: float = 60.0) -> str:
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        if line is None:
            break
        if predicate(line):
            return line
    raise RuntimeError(f"{what} did not start (rc={proc.poll()})")


def start_echo(tmp: Path, cpu: int | None) -> Target:
    err = open(tmp / "echo.stderr", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(pinned(cpu, [PYTHON, ECHO, "--http", "0"]), stdout=subprocess.PIPE, stderr=err, text=True)
    line = wait_line(proc, lambda s: s.startswith("listening "), "echo backend")
    return Target("direct", proc, int(line.split()[1]), stderr_path=tmp / "echo.stderr")


def start_gateway(mode: str, backend_args: list[str], tmp: Path, cpu: int | None) -> Target:
    argv = [
        CLI,
        "wrap",
        *backend_args,
        "--port",
        "0",
        "--json",
        "--state-file",
        str(tmp / f"{mode}.db"),
        "--rate-limit",
        "0",
        "--price",
        "1",
    ]
    err_path = tmp / f"gateway-{mode}.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(pinned(cpu, argv), stdout=subprocess.PIPE, stderr=err, text=True, cwd=str(tmp))
    try:
        line = wait_line(proc, lambda s: s.startswith("{") and '"ready"' in s, f"gateway ({mode})")
    except RuntimeError as exc:
        stop(proc)
        raise RuntimeError(f"{exc}\n{err_path.read_text(errors='replace')[-3000:]}") from exc
    ready = json.loads(line)
    return Target(mode, proc, int(ready["port"]), str(ready["adminKey"]), err_path)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
