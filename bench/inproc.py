"""The gateway's own CPU per tools/call, without sockets: GatewayApp driven in-process.

    .venv/bin/python bench/inproc.py [--calls 20000] [--batch 16] [--profile]

Builds the real app (real SQLite file in a temp dir, real billing, metrics and
dispatcher) with an in-process backend that answers instantly, then sends
tools/call through the ASGI interface `--batch` at a time on one event loop.
Prints µs per call: the part of the per-request cost that is ours (not
uvicorn's, the kernel's or the backend's). `--profile` prints a cProfile top.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from paygate.app import create_app
from paygate.config import load_settings
from paygate.keys.service import KeyService
from paygate.mcp.jsonrpc import Message


class InstantBackend:
    """Implements the Backend protocol; answers tools/call with an echo at once."""

    label = "inproc"
    ready = True
    init_result: dict[str, Any] = {
        "protocolVersion": "2025-06-18",
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "inproc", "version": "1"},
    }
    tools: list[dict[str, Any]] = [{"name": "echo", "inputSchema": {"type": "object"}}]

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def request(self, method: str, params: Any, timeout: float) -> Message:
        await asyncio.sleep(0)  # one loop pass, like a real answer arriving
        return {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "x"}]}}

    async def notify(self, method: str, params: Any = None) -> None: ...
    async def respond(self, message: Message) -> None: ...
    def add_listener(self, listener: Any) -> None: ...
    async def refresh_tools(self, timeout: float = 30.0) -> None: ...


async def drive(app: Any, key: str, calls: int, batch: int, flush: Callable[[], None]) -> float:
    body = orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "bench"}}}
    )
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"x-api-key", key.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    ok = 0

    async def one() -> None:
        nonlocal ok
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/mcp",
            "headers": headers,
            "query_string": b"",
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
            "scheme": "http",
            "http_version": "1.1",
            "root_path": "",
            "raw_path": b"/mcp",
        }
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        await app(scope, receive, send)
        ok += sent[0]["status"] == 200 and b'"result"' in sent[1]["body"]

    start = time.perf_counter()
    for _ in range(calls // batch):
        await asyncio.gather(*(one() for _ in range(batch)))
    flush()  # deferred event subscribers (audit …) are part of each call's cost
    elapsed = time.perf_counter() - start
    assert ok == calls // batch * batch, f"only {ok} calls succeeded"
    return elapsed


async def main_async(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="paygate-inproc-"))
    try:
        await measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def measure(args: argparse.Namespace, tmp: Path) -> None:
    settings = load_settings(
        {
            "remoteUrl": "http://127.0.0.1:9/mcp",
            "stateFile": str(tmp / "b.db"),
            "globalRateLimitPerMin": 0,
            "adminKey": "admin_" + "x" * 32,
        },
        None,
    )
    app, rt = create_app(settings, backend=InstantBackend())  # type: ignore[arg-type]
    key = KeyService(rt.store).create("bench", 10**12).raw
    rt.dispatcher.priced_tools()
    await drive(app, key, 2000, args.batch, rt.events.flush)  # warm up
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    elapsed = await drive(app, key, args.calls, args.batch, rt.events.flush)
    if profiler:
        profiler.disable()
    rt.store.close()
    print(
        f"{elapsed / args.calls * 1e6:.1f} µs per tools/call in-process (batch {args.batch}"
        f"{', under cProfile' if profiler else ''})"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    try:
        import uvloop

        uvloop.run(main_async(args))
    except ImportError:
        asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
