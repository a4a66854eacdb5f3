"""Run the official MCP conformance suite against a server directly, then through the gateway.

For each target server: start it on 127.0.0.1, run `conformance server --url …` against it, start
`paygate-mcp wrap --remote-url …` in front of it (`--server …` over stdio for `own-stdio`) with one
API key that can afford every call, run the suite again against the gateway, and write three files
to the results directory:
`<target>-direct.json` and `<target>-gateway.json` (normalized result sets, see results.py) and
`<target>-comparison.json` (every check that passes directly but not through the gateway).

The suite has no option to send a header, so its Node process is started with `api_key.mjs`
preloaded, which adds `X-API-Key` to every request it makes, as a client configured with a key would.
Nothing here touches the network beyond 127.0.0.1; every process started is stopped.

    .venv/bin/python -m conformance.run                      # every target, into conformance/results/
    .venv/bin/python -m conformance.run own --results-dir /tmp/conformance

Exit status: 0 when every check that passes directly passes through the gateway too, 1 when one
does not, 2 when the run itself failed (a missing tool, a server that did not start).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.results import comparison, read_suite_output, result_set, summary, write_json

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
SUITE_PACKAGE = NODE_MODULES / "@modelcontextprotocol" / "conformance"
SUITE_VERSION = "0.1.12"  # pinned in tests/node/package.json; 0.1.14+ needs Node 22
API_KEY_PRELOAD = Path(__file__).resolve().parent / "api_key.mjs"
NODE_LOCALHOST_PRELOAD = ROOT / "tests" / "node" / "listen_localhost.cjs"
OWN_SERVER = ROOT / "tests" / "servers" / "conformance_server.py"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CREDITS = 1_000_000  # far more than one run's tool calls cost at the default price of 1
SUITE_TIMEOUT = 600.0


class RunnerError(RuntimeError):
    """The run could not be done (as opposed to checks that failed)."""


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    command: Callable[[int], tuple[list[str], dict[str, str]]]  # port -> argv, extra env
    stdio: list[str] | None = None  # the gateway wraps this stdio command instead of the HTTP server


def _everything(port: int) -> tuple[list[str], dict[str, str]]:
    binary = NODE_MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    return [_node(), str(_existing(binary)), "streamableHttp"], {
        "PORT": str(port),
        "NODE_OPTIONS": f"--require {NODE_LOCALHOST_PRELOAD}",
    }


def _own(port: int) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, str(OWN_SERVER), "http", str(port)], {}


TARGETS = {
    "everything": Target("everything", "@modelcontextprotocol/server-everything (streamableHttp)", _everything),
    "own": Target("own", "tests/servers/conformance_server.py (the SDK's MCPServer)", _own),
    # The same server, run directly over HTTP and wrapped by the gateway over stdio (StdioBackend).
    "own-stdio": Target(
        "own-stdio",
        "tests/servers/conformance_server.py, the gateway wrapping it over stdio",
        _own,
        stdio=[sys.executable, str(OWN_SERVER), "stdio"],
    ),
}


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise RunnerError("node is not on PATH: the conformance suite needs Node.js 20 (see tests/node)")
    return node


def _existing(path: Path) -> Path:
    if not path.exists():
        raise RunnerError(f"{path} is missing: run `npm ci` in tests/node")
    return path


def suite_name() -> str:
    manifest = json.loads(_existing(SUITE_PACKAGE / "package.json").read_text())
    if manifest["version"] != SUITE_VERSION:
        raise RunnerError(f"conformance suite {manifest['version']} installed, {SUITE_VERSION} expected")
    return f"{manifest['name']}@{manifest['version']}"


# --- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def _started(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """A subprocess that is always stopped, its output in `log`."""
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env},
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield proc
    finally:
        _stop(proc)


def _wait_ready(
    proc: subprocess.Popen[str], ready: Callable[[], bool], what: str, log: Path, timeout: float = 60.0
) -> None:
    """Poll `ready` until it holds; fail at once if the process exits, and at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunnerError(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if ready():
            return
        time.sleep(0.05)
    raise RunnerError(f"{what} was not ready within {timeout:g}s:\n{log.read_text()[-3000:]}")


def _port_open(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", port)) == 0

    return probe


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP proxy


def _answers_200(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with _DIRECT.open(url, timeout=2) as resp:
                return int(resp.status) == 200
        except OSError:  # refused, reset, or an HTTP error status (HTTPError is an OSError)
            return False

    return probe


@contextmanager
def target_server(target: Target, work: Path) -> Iterator[str]:
    """Start the target on a free port of 127.0.0.1; yields its MCP URL."""
    port = free_port()
    argv, env = target.command(port)
    log = work / f"{target.name}-server.log"
    with _started(argv, env, log) as proc:
        _wait_ready(proc, _port_open(port), f"{target.name} on 127.0.0.1:{port}", log)
        yield f"http://127.0.0.1:{port}/mcp"


@contextmanager
def gateway(backend: list[str], api_key: str, log: Path) -> Iterator[str]:
    """`paygate-mcp wrap BACKEND…` (`--remote-url URL` or `--server COMMAND`), with `api_key` imported
    holding CREDITS credits and no rate limit; yields the gateway's MCP URL."""
    cli = Path(sys.executable).parent / "paygate-mcp"
    port = free_port()
    argv = [
        str(_existing(cli)),
        "wrap",
        *backend,
        "--port",
        str(port),
        "--state-file",
        ":memory:",
        "--rate-limit",
        "0",
        "--import-key",
        f"{api_key}:{CREDITS}",
    ]
    with _started(argv, {}, log) as proc:
        _wait_ready(proc, _answers_200(f"http://127.0.0.1:{port}/ready"), "the gateway", log)  # backend up
        yield f"http://127.0.0.1:{port}/mcp"


# --- the suite -----------------------------------------------------------------------------------


def run_suite(url: str, output: Path, api_key: str | None = None) -> None:
    """`conformance server --url URL -o OUTPUT` (the active suite: every scenario not pending)."""
    argv = [_node(), str(_existing(SUITE_PACKAGE / "dist" / "index.js")), "server", "--url", url, "-o", str(output)]
    env = {"NODE_OPTIONS": ""}
    if api_key is not None:
        env = {"NODE_OPTIONS": f"--import={API_KEY_PRELOAD.as_uri()}", "PAYGATE_API_KEY": api_key}
    log = output.with_suffix(".log")
    output.mkdir()
    with log.open("w") as log_file:
        try:
            # Exit status 1 means "some check failed", which the result files record.
            subprocess.run(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                timeout=SUITE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RunnerError(f"the conformance suite did not finish within {SUITE_TIMEOUT:g}s: {log}") from exc


def run_target(target: Target, suite: str, results_dir: Path, work: Path) -> dict[str, Any]:
    api_key = "pg_" + secrets.token_hex(24)
    with ExitStack() as stack:
        backend_url = stack.enter_context(target_server(target, work))
        run_suite(backend_url, work / f"{target.name}-direct")
        backend = ["--server", shlex.join(target.stdio)] if target.stdio else ["--remote-url", backend_url]
        gateway_url = stack.enter_context(gateway(backend, api_key, work / f"{target.name}-gateway-process.log"))
        run_suite(gateway_url, work / f"{target.name}-gateway", api_key)
    direct = result_set(suite, target.name, "direct", read_suite_output(work / f"{target.name}-direct"))
    through = result_set(suite, target.name, "gateway", read_suite_output(work / f"{target.name}-gateway"))
    comp = comparison(target.name, direct, through)
    write_json(results_dir / f"{target.name}-direct.json", direct)
    write_json(results_dir / f"{target.name}-gateway.json", through)
    write_json(results_dir / f"{target.name}-comparison.json", comp)
    return comp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "targets", nargs="*", metavar="TARGET", help=f"targets to run: {', '.join(TARGETS)} (default: all)"
    )
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where the result files go (default: conformance/results)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the suite's and servers' logs")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="paygate-conformance-"))
    parity = True
    try:
        suite = suite_name()
        for name in args.targets or list(TARGETS):
            comp = run_target(TARGETS[name], suite, args.results_dir, work)
            print(summary(comp), flush=True)
            parity = parity and not comp["passDirectlyButNotThroughGateway"]
    except RunnerError as exc:
        print(f"conformance run failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep_logs:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if parity else 1


if __name__ == "__main__":
    sys.exit(main())
