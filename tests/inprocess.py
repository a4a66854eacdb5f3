"""The real gateway app served by uvicorn inside the test process: the fast tier's `gw`.

`start_inprocess_gateway(*cli_args, state_file=..., admin_key=...)` parses the same arguments as
`paygate-mcp wrap` (paygate.cli.settings_from_wrap_args), builds the real app with
`paygate.app.create_app` and serves it with uvicorn (uvloop, httptools: as `wrap` does) on
127.0.0.1, port 0, on an event loop of its own in a background thread. Real sockets, so SSE
streams, chunked bodies and body limits behave as in production; no interpreter start, so it is up
in tens of milliseconds. `--server ECHO_COMMAND` (also inside a config file's `servers`) is served
by tests/echo_backend.py; any other stdio command is refused (it would start a process: e2e).

What differs from the process, on purpose: no startup banner or `logs.configure` (the test
process's logging is pytest's), no signals (`stop()` runs the exit-signal actions, then stops
uvicorn as SIGTERM would), the environment is this process's, and `events()` comes from an
EventHub subscriber instead of the stderr log line (same `{type, actor, data}`, same JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import fastapi.dependencies.models
import httpx
import orjson
import uvicorn

from paygate.app import create_app
from paygate.cli import settings_from_wrap_args
from paygate.compose import build_core
from paygate.config import Settings
from paygate.events.hub import GATE_EVENTS, Event
from paygate.http.server import build_server
from paygate.logs import TEXT_FORMAT
from paygate.mcp.backends.base import Backend
from paygate.mcp.backends.router import RouterBackend
from paygate.runtime import Runtime
from tests.echo_backend import EchoBackend
from tests.support import ECHO_SERVER, GatewayClient

LOGGERS = ("paygate", "uvicorn.error")  # what the process would print on stderr


def _is_echo(command: str | None, args: Sequence[str]) -> bool:
    """tests/servers/echo_server.py over stdio (it ignores arguments after its path other than `http`)."""
    return "python" in (command or "") and list(args[:1]) == [ECHO_SERVER] and "http" not in args[1:2]


def echo_backend_for(settings: Settings) -> tuple[Backend | None, str]:
    """The backend (and transport name) the gateway gets in place of `build_backend`'s: echo doubles
    for the echo server, None (the real one) for remote URLs. Other stdio commands: refused."""

    def refuse(command: str | None, args: Sequence[str]) -> None:
        raise ValueError(
            f"the in-process gateway runs no MCP server process ({shlex.join([command or '', *args])}):"
            " use tests.support.running_gateway in an e2e test"
        )

    if settings.servers:
        children: dict[str, Backend] = {}
        for server in settings.servers:
            if server.remote_url:
                return None, "multi"  # a mixed or remote router: the real one (no process for URLs)
            if not _is_echo(server.server_command, server.server_args):
                refuse(server.server_command, server.server_args)
            children[server.prefix] = EchoBackend(server.prefix)
        return RouterBackend(children), "multi"
    if settings.remote_url:
        return None, "http"
    if not _is_echo(settings.server_command, settings.server_args):
        refuse(settings.server_command, settings.server_args)
    return EchoBackend(), "stdio"


class _Capture(logging.Handler):
    """The log lines the process would have written on stderr, formatted as it would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(TEXT_FORMAT))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class InProcessGateway(GatewayClient):
    """A gateway served from a thread of this process (see the module docstring)."""

    def __init__(self, settings: Settings, admin_key: str | None) -> None:
        self.settings = settings
        self.admin_key_override = admin_key
        self.ready: dict[str, Any] = {}
        self.rt: Runtime | None = None
        self.server: uvicorn.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._events: list[dict[str, Any]] = []
        self._failure: BaseException | None = None
        self._startup_failure: str | None = None
        self._done = threading.Event()
        self._wake: asyncio.Event | None = None  # set by stop(): the main loop exits without its tick's wait
        self._capture = _Capture()
        self._levels: dict[str, int] = {}
        self._sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((settings.host, settings.port))
        self._sock.listen(2048)
        self._thread = threading.Thread(target=self._run, name="inprocess-gateway", daemon=True)

    # --- start and stop ---------------------------------------------------------------------------

    def start(self, timeout: float) -> None:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.addHandler(self._capture)
        logging.getLogger("paygate").setLevel(self.settings.log_level.upper())
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not (self.server and self.server.started):
            if self._done.is_set() or time.monotonic() > deadline:
                self._finish()
                why = (self._startup_failure or f"error: {self._failure}") if self._done.is_set() else "timed out"
                raise RuntimeError(f"gateway did not start: {why}\n{self.stderr()[-4000:]}")
            time.sleep(0.002)
        # verify=False: plain http to 127.0.0.1, and loading the CA bundle cost ~55 ms per gateway
        self.client = httpx.Client(base_url=self.url, timeout=30.0, verify=False)

    def _run(self) -> None:
        try:
            # As `wrap` does: the app is built before the loop runs, on the thread that serves it.
            backend, transport = echo_backend_for(self.settings)
            rt = build_core(self.settings, backend)
            rt.transport = transport if backend is not None else rt.transport
            rt.events.subscribe(self._record)
            app, _ = create_app(self.settings, runtime=rt, on_ready=self._on_ready)
            self.rt = rt
            # the server `wrap` builds: the same connection limits (paygate/http/server.py)
            self.server = build_server(self.settings, self._startup_errors(app), rt.metrics, log_config=None)
            self.server.main_loop = self._main_loop  # type: ignore[method-assign]
            config = self.server.config
            with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
                self.loop = runner.get_loop()
                runner.run(self.server.serve(sockets=[self._sock]))
        except BaseException as exc:
            self._failure = exc
        finally:
            self._sock.close()
            self._done.set()

    async def _main_loop(self) -> None:
        """uvicorn's main loop (a tick every 0.1 s until `should_exit`), but woken by `stop()` at once
        rather than at its next tick: ~50 ms less per gateway stopped, the same shutdown after it."""
        server = self.server
        assert server is not None
        self._wake = asyncio.Event()
        counter = 0
        while not await server.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self._wake.wait()

    def _on_ready(self, rt: Runtime) -> None:
        host = "127.0.0.1" if rt.settings.host in ("0.0.0.0", "::") else rt.settings.host
        port = self._sock.getsockname()[1]
        self.ready = {
            "event": "ready",
            "port": port,
            "url": f"http://{host}:{port}",
            "adminKey": rt.admin.generated,
            "transport": rt.transport,
            "tools": len(rt.backend.tools),
            "stateFile": rt.settings.state_file,
        }

    def _startup_errors(self, app: Any) -> Any:
        """Keeps the reason a lifespan startup failed (the process prints it as `error: ...`)."""

        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            async def keep(message: Any) -> None:
                if message["type"] == "lifespan.startup.failed":
                    self._startup_failure = message.get("message") or "startup failed"
                await send(message)

            await app(scope, receive, keep if scope["type"] == "lifespan" else send)

        return wrapped

    def stop(self, timeout: float = 30.0) -> int:
        """Stop as SIGTERM does (the exit-signal actions first, then uvicorn's drain); 0 when clean."""
        if hasattr(self, "client"):
            self.client.close()
        if self.server is not None and self.loop is not None and not self._done.is_set():
            rt, server = self.rt, self.server
            assert rt is not None

            def exit_signal() -> None:
                for action in list(rt.on_exit_signal):
                    action()
                server.should_exit = True
                if self._wake is not None:
                    self._wake.set()

            self.loop.call_soon_threadsafe(exit_signal)
        self._thread.join(timeout)
        self._finish()
        _forget_stopped_apps()
        if self._thread.is_alive():
            raise RuntimeError(f"the in-process gateway did not stop within {timeout:g}s")
        return 0 if self._failure is None else 1

    def _finish(self) -> None:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            logger.removeHandler(self._capture)
            logger.setLevel(self._levels.get(name, logging.NOTSET))

    # --- what tests read --------------------------------------------------------------------------

    def _record(self, event: Event) -> None:
        if event.type in GATE_EVENTS:  # never logged (events/hub.py), so never in events() either
            return
        line = orjson.dumps({"type": event.type, "actor": event.actor, "data": event.data}, default=str)
        self._events.append(orjson.loads(line))

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Events the gateway published so far, `[{type, actor, data}]` as its log line carries them."""
        return [e for e in list(self._events) if type_ is None or e["type"] == type_]

    def stderr(self) -> str:
        """What the process would have logged on stderr (no banner: that goes to stdout)."""
        return "\n".join(self._capture.lines)

    def call_in_loop(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the gateway's loop (where its store lives) and return its result."""
        assert self.loop is not None
        future: Future[Any] = Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(30)

    def tick(self, now: float) -> None:
        """Run the runtime's tickers at time `now` (schedules, expiry scans, TTLs) as its once-a-second
        task does, then deliver the events they published: the test decides what time it is."""
        rt = self.rt
        assert rt is not None

        def run() -> None:
            for ticker in list(rt.tickers):
                ticker(now)
            rt.events.flush()

        self.call_in_loop(run)


def _forget_stopped_apps() -> None:
    """FastAPI memoizes whether a callable is a coroutine or generator in module-level LRU caches (up to
    4096 entries each) keyed by the callable itself: every endpoint and dependency of a stopped gateway
    stayed reachable from them, and with them the gateway (app, services, store: ~25,000 objects), which
    every full garbage collection of the test process then walked again. A stopped gateway's callables
    are never asked about again (each app has its own closures), so the caches only lose dead entries."""
    for name in ("_is_gen_callable_cached", "_is_async_gen_callable_cached", "_is_coroutine_callable_cached"):
        cached = getattr(fastapi.dependencies.models, name, None)
        if cached is not None:
            cached.cache_clear()


def start_inprocess_gateway(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    state_file: str | None = ":memory:",
    cwd: str | None = None,
    admin_key: str | None = None,
) -> InProcessGateway:
    """`start_gateway`'s signature, served in-process. `env` and `cwd` would need a process: refused."""
    if env or cwd:
        raise ValueError(
            "an in-process gateway has this process's environment and directory: "
            "use tests.support.start_gateway in an e2e test"
        )
    argv = ["--port", "0", *args, *(("--admin-key", admin_key) if admin_key else ())]
    if state_file is not None and "--state-file" not in args:
        argv += ["--state-file", state_file]
    try:
        settings = settings_from_wrap_args(argv)
    except Exception as exc:  # the process would print `error: ...` and exit 2
        raise RuntimeError(f"gateway did not start: error: {exc}") from exc
    gateway = InProcessGateway(settings, admin_key)
    gateway.start(timeout)
    return gateway


@contextmanager
def running_inprocess_gateway(*args: str, **kwargs: Any) -> Iterator[InProcessGateway]:
    """`start_inprocess_gateway` that is always stopped."""
    gateway = start_inprocess_gateway(*args, **kwargs)
    try:
        yield gateway
    finally:
        gateway.stop()
