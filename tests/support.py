"""Helpers shared by the tests: run the real CLI as a subprocess, find free ports."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "paygate-mcp")
PYTHON = sys.executable
ECHO_SERVER = str(ROOT / "tests" / "servers" / "echo_server.py")
NODE_BIN = ROOT / "tests" / "node" / "node_modules" / ".bin"
ECHO_COMMAND = f"{PYTHON} {ECHO_SERVER}"
# Set per test by tests/conftest.py: only tests marked e2e start processes (outside pytest: any code).
PROCESSES_ALLOWED = True


def _require_e2e(what: str) -> None:
    if not PROCESSES_ALLOWED:
        raise AssertionError(f"{what} starts a process: mark the test e2e, or use tests/inprocess.py")


def masked(raw: str) -> str:
    """A key as the gateway shows it: first 7 and last 4 characters."""
    return f"{raw[:7]}…{raw[-4:]}"


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


class GatewayClient:
    """What tests do with a running gateway over HTTP, whether a process (Gateway) or in-process
    (tests/inprocess.py). Subclasses set `ready` (the ready line), `admin_key_override` and `client`."""

    ready: dict[str, Any]
    admin_key_override: str | None
    client: httpx.Client

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

    def rpc(
        self,
        method: str,
        params: Any = None,
        key: str | None = None,
        msg_id: Any = 1,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
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
        raise NotImplementedError

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def stop(self) -> int:
        raise NotImplementedError


@dataclass
class Gateway(GatewayClient):
    """A running `paygate-mcp wrap` process."""

    proc: subprocess.Popen[str]
    ready: dict[str, Any]
    stderr_path: Path
    admin_key_override: str | None = None
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Events the gateway published so far (its one internal hook logs each as JSON on stderr):
        `[{type, actor, data}]`, oldest first, optionally only those of `type_`."""
        out = []
        for line in self.stderr().splitlines():
            _, marker, payload = line.partition("paygate.events: ")
            if marker and payload.startswith("{"):
                event = json.loads(payload)
                if type_ is None or event["type"] == type_:
                    out.append(event)
        return out

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


def start_gateway(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    state_file: str | None = ":memory:",
    cwd: str | None = None,
    admin_key: str | None = None,
) -> Gateway:
    """Start `paygate-mcp wrap --port 0 --json ARGS…` and wait for its ready line. `admin_key`: start
    it with that admin key (a restart on the same state file then keeps the same one)."""
    _require_e2e("start_gateway")
    argv = [CLI, "wrap", "--port", "0", "--json", *args, *(("--admin-key", admin_key) if admin_key else ())]
    if state_file is not None and "--state-file" not in args:
        argv += ["--state-file", state_file]
    fd, stderr_name = tempfile.mkstemp(prefix="paygate-stderr-", suffix=".log")
    full_env = {**os.environ, **(env or {})}
    with os.fdopen(fd, "w") as stderr_file:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr_file, text=True, env=full_env, cwd=cwd)
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
            return Gateway(proc, json.loads(line), Path(stderr_name), admin_key_override=admin_key)
    proc.kill()
    proc.wait()
    if proc.stdout:
        proc.stdout.close()
    raise RuntimeError(
        f"gateway did not start: rc={proc.returncode}\n{Path(stderr_name).read_text(errors='replace')[-4000:]}"
    )


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line.rstrip("\n"))
    lines.put(None)


# --- helpers for the end-to-end suites -----------------------------------------------------------

TIME_SERVER = str(VENV_BIN / "mcp-server-time")

# Node servers that call `listen(PORT)` bind every interface; this preload pins them to 127.0.0.1.
NODE_LOCALHOST_PRELOAD = ROOT / "tests" / "node" / "listen_localhost.cjs"


def wait_until(
    predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition", interval: float = 0.02
) -> None:
    """Poll `predicate` until it is true; fail with `what` at the deadline (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def node_server(name: str) -> str:
    """The path of an npm-installed MCP server; fails (never skips) when node or the package is missing."""
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the end-to-end tests need Node.js (see tests/node/package.json)")
    path = NODE_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci` in tests/node")
    return str(path)


@contextmanager
def running_gateway(*args: str, **kwargs: Any) -> Iterator[Gateway]:
    """`start_gateway` that is always stopped."""
    gw = start_gateway(*args, **kwargs)
    try:
        yield gw
    finally:
        gw.stop()


@dataclass
class ServerProcess:
    """A backend server we started as a subprocess, listening on 127.0.0.1:`port`."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(argv: list[str], port: int, env: dict[str, str] | None = None, timeout: float = 30.0) -> ServerProcess:
    """Start an HTTP MCP server and wait until its port answers."""
    _require_e2e("start_server")
    fd, log_name = tempfile.mkstemp(prefix="paygate-backend-", suffix=".log")
    with os.fdopen(fd, "w") as log_file:
        proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    server = ServerProcess(proc, port, Path(log_name))
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode}:\n{server.log()[-3000:]}")
            try:
                httpx.get(server.url, timeout=1.0)
                return server
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    except BaseException:
        server.stop()
        raise


@contextmanager
def echo_http_server(port: int | None = None, sse: bool = False) -> Iterator[ServerProcess]:
    """tests/servers/echo_server.py in Streamable HTTP mode (JSON responses, or SSE with `sse`)."""
    port = port or free_port()
    server = start_server([PYTHON, ECHO_SERVER, "http", str(port), *(["sse"] if sse else [])], port)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def everything_http_server() -> Iterator[ServerProcess]:
    """@modelcontextprotocol/server-everything in streamableHttp mode (SSE responses), on 127.0.0.1."""
    binary = node_server("mcp-server-everything")
    port = free_port()
    env = {"PORT": str(port), "NODE_OPTIONS": f"--require {NODE_LOCALHOST_PRELOAD}"}
    server = start_server([binary, "streamableHttp"], port, env=env)
    try:
        yield server
    finally:
        server.stop()


def write_config(directory: Path, config: dict[str, Any]) -> str:
    path = directory / "paygate.json"
    path.write_text(json.dumps(config))
    return str(path)


def usage_events(gw: Gateway, key_name: str) -> list[dict[str, Any]]:
    resp = gw.client.get("/usage", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return [e for e in resp.json()["events"] if e["keyName"] == key_name]


def text_of(reply: dict[str, Any]) -> str:
    """The concatenated text content of a tools/call result (fails on a JSON-RPC error)."""
    assert "result" in reply, reply
    return "".join(c.get("text", "") for c in reply["result"]["content"] if c.get("type") == "text")
