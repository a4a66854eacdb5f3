"""Helpers shared by the tests: run the real CLI as a subprocess, find free ports."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "paygate-mcp")
PYTHON = sys.executable
ECHO_SERVER = str(ROOT / "tests" / "servers" / "echo_server.py")
NODE_BIN = ROOT / "tests" / "node" / "node_modules" / ".bin"
ECHO_COMMAND = f"{PYTHON} {ECHO_SERVER}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, timeout: float = 20.0) -> None:
    """Poll until something answers at `url` (used for backends we start ourselves)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError as exc:
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"nothing answered at {url}: {last}")


@dataclass
class Gateway:
    """A running `paygate-mcp wrap` process."""

    proc: subprocess.Popen[str]
    ready: dict[str, Any]
    stderr_path: Path
    admin_key_override: str | None = None
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    @property
    def port(self) -> int:
        return int(self.ready["port"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ready['port']}"

    @property
    def admin_key(self) -> str:
        key = self.admin_key_override or self.ready.get("adminKey")
        assert key, "gateway printed no admin key"
        return str(key)

    def admin(self) -> dict[str, str]:
        return {"X-Admin-Key": self.admin_key}

    def create_key(self, credits: int, **extra: Any) -> str:
        resp = self.client.post("/keys", json={"name": "test", "credits": credits, **extra}, headers=self.admin())
        assert resp.status_code == 201, resp.text
        return str(resp.json()["key"])

    def rpc(self, method: str, params: Any = None, key: str | None = None, msg_id: Any = 1,
            headers: dict[str, str] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            body["params"] = params
        h = dict(headers or {})
        if key:
            h["X-API-Key"] = key
        return self.client.post("/mcp", json=body, headers=h)

    def call_tool(self, name: str, arguments: dict[str, Any], key: str | None, msg_id: Any = 1) -> dict[str, Any]:
        resp = self.rpc("tools/call", {"name": name, "arguments": arguments}, key=key, msg_id=msg_id)
        return dict(resp.json())

    def balance(self, key: str) -> int:
        resp = self.client.get("/balance", headers={"X-API-Key": key})
        assert resp.status_code == 200, resp.text
        return int(resp.json()["credits"])

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        return int(self.proc.returncode)


def start_gateway(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0,
                  state_file: str | None = ":memory:", cwd: str | None = None) -> Gateway:
    """Start `paygate-mcp wrap --port 0 --json ARGS…` and wait for its ready line."""
    argv = [CLI, "wrap", "--port", "0", "--json", *args]
    if state_file is not None and "--state-file" not in args:
        argv += ["--state-file", state_file]
    fd, stderr_name = tempfile.mkstemp(prefix="paygate-stderr-", suffix=".log")
    full_env = {**os.environ, **(env or {})}
    with os.fdopen(fd, "w") as stderr_file:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr_file, text=True, env=full_env,
                                cwd=cwd)
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
        if line.startswith("{") and '"event": "ready"' in line:
            return Gateway(proc, json.loads(line), Path(stderr_name))
    proc.kill()
    proc.wait()
    if proc.stdout:
        proc.stdout.close()
    raise RuntimeError(f"gateway did not start: rc={proc.returncode}\n"
                       f"{Path(stderr_name).read_text(errors='replace')[-4000:]}")


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line.rstrip("\n"))
    lines.put(None)
