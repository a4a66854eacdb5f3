"""The gateway inside your own Python program (docs/embedding.md).

    from paygate.config import load_settings
    from paygate.embed import serve

    settings = load_settings({"serverCommand": "mcp-server-time", "port": 0, "stateFile": ":memory:"})
    async with serve(settings) as gateway:
        print(gateway.url, gateway.admin_key)
        ...  # the gateway answers until the block ends

`serve` runs on the caller's event loop; `GatewayThread` runs it on a thread of its own, for programs that
are not async. Both build exactly what `paygate-mcp wrap` builds (`create_app`, the same uvicorn server with
the same limits), and stop as `SIGTERM` stops it: new work refused, calls in flight answered, the backend
and the store closed. Settings come from `paygate.config.load_settings`, which takes the config file's keys
(and the flags' names: `server`, `toolPrice`, ...), and applies `PAYGATE_*` variables unless `environ={}`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass
from typing import Any

from paygate.config import Settings
from paygate.mcp.backends.base import Backend
from paygate.runtime import Runtime


@dataclass(slots=True)
class EmbeddedGateway:
    runtime: Runtime
    host: str
    port: int  # the one bound (settings.port 0 picks a free one)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def admin_key(self) -> str | None:
        """The admin key when this start generated it or it was configured; None when it was generated
        by an earlier start (it is in the state directory's admin.key)."""
        return self.runtime.admin.generated or self.runtime.settings.admin_key


@asynccontextmanager
async def serve(settings: Settings, *, backend: Backend | None = None) -> AsyncIterator[EmbeddedGateway]:
    """Start the gateway on this event loop; it serves until the block ends, then stops cleanly.
    `backend`: your own `Backend` in place of the configured server (tests, custom transports)."""
    from paygate.app import create_app  # the web stack, only when a gateway is actually started
    from paygate.http.server import build_server

    sock = _listen(settings)
    ready = asyncio.Event()
    app, rt = create_app(settings, backend=backend, on_ready=lambda _: ready.set())
    server = build_server(settings, app, rt.metrics, log_config=None)
    server.capture_signals = nullcontext  # type: ignore[method-assign,assignment]  # the host keeps its signals

    async def run() -> None:
        with suppress(SystemExit):  # uvicorn exits 3 when the app's startup failed: an error for the caller
            await server.serve(sockets=[sock])

    task = asyncio.get_running_loop().create_task(run())
    try:
        await _started(ready, task)
        yield EmbeddedGateway(rt, settings.host, sock.getsockname()[1])
    finally:
        for action in rt.on_exit_signal:  # as on SIGTERM: refuse new work, end the GET streams
            action()
        server.should_exit = True
        with suppress(asyncio.CancelledError):
            await task
        sock.close()


class GatewayThread:
    """`serve` on a thread of its own: `start()` returns once the gateway is ready, `stop()` stops it.

    with GatewayThread(settings) as gateway:
        requests.post(gateway.url + "/keys", ...)
    """

    def __init__(self, settings: Settings, *, backend: Backend | None = None) -> None:
        self.settings = settings
        self.backend = backend
        self._gateway: EmbeddedGateway | None = None
        self._failure: BaseException | None = None
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="paygate-gateway", daemon=True)

    def start(self, timeout: float = 60.0) -> EmbeddedGateway:
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError(f"the gateway did not start within {timeout:g}s")
        if self._gateway is None:
            raise RuntimeError(f"the gateway did not start: {self._failure}") from self._failure
        return self._gateway

    def stop(self, timeout: float = 60.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with suppress(RuntimeError):  # it closed meanwhile: the gateway has stopped already
                loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> EmbeddedGateway:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self) -> None:
        import uvloop

        try:
            uvloop.run(self._serve())
        except BaseException as exc:  # reported by start()
            self._failure = exc
        finally:
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self.settings, backend=self.backend) as gateway:
            self._gateway = gateway
            self._started.set()
            await self._stop.wait()


def _listen(settings: Settings) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


async def _started(ready: asyncio.Event, task: asyncio.Task[None]) -> None:
    """Until the app's startup is done; the server's own error if it stopped first (a backend that
    cannot start fails the lifespan, and uvicorn then exits)."""
    waiting = asyncio.ensure_future(ready.wait())
    await asyncio.wait({waiting, task}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        waiting.cancel()
        raise RuntimeError("the gateway did not start (its backend or store failed: see the log)")
