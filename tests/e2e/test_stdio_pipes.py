"""StdioBackend over real pipes to a real process, on both event loops (the gateway runs uvloop): answers of
any size, noise on stdout, server requests, the process dying mid-call and its restart, a graceful stop.
The line splitting itself, read by read, is tests/unit/test_stdio_backend.py."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from paygate.mcp.backends.base import BackendUnavailable
from paygate.mcp.backends.stdio import StdioBackend
from paygate.mcp.jsonrpc import Message
from tests.support import PYTHON

SERVER = r"""
import json, sys

def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()

for line in sys.stdin:
    message = json.loads(line)
    our_id, method = message.get("id"), message.get("method")
    if our_id is None or "result" in message:
        continue
    if method == "initialize":
        result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "s"}}
    elif method == "tools/list":
        result = {"tools": [{"name": n} for n in ("echo", "big", "noisy", "die")]}
    else:
        name, arguments = message["params"]["name"], message["params"].get("arguments", {})
        if name == "die":
            sys.exit(3)
        if name == "noisy":
            sys.stdout.write("a log line on stdout\n")
            send({"jsonrpc": "2.0", "id": "srv-1", "method": "roots/list"})
            send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "hi"}})
        text = "x" * arguments["size"] if name == "big" else arguments.get("text", "")
        result = {"content": [{"type": "text", "text": text}]}
    send({"jsonrpc": "2.0", "id": our_id, "result": result})
"""

LOOPS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


def text_of(reply: Message) -> str:
    return str(reply["result"]["content"][0]["text"])


async def call(backend: StdioBackend, name: str, **arguments: Any) -> Message:
    return await backend.request("tools/call", {"name": name, "arguments": arguments}, 10.0)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_real_server_over_our_pipes(loop: str, tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER)

    async def scenario() -> None:
        fds_before = len(os.listdir("/proc/self/fd"))
        backend = StdioBackend(PYTHON, [str(script)], "real")
        seen: list[Message] = []
        backend.add_listener(seen.append)
        await backend.start()
        try:
            assert backend.ready and {t["name"] for t in backend.tools} == {"echo", "big", "noisy", "die"}
            replies = await asyncio.gather(*(call(backend, "echo", text=f"t{i}") for i in range(50)))
            assert [text_of(r) for r in replies] == [f"t{i}" for i in range(50)]
            assert len(text_of(await call(backend, "big", size=3_000_000))) == 3_000_000  # many reads
            assert text_of(await call(backend, "noisy", text="after the noise")) == "after the noise"
            assert [m["method"] for m in seen] == ["roots/list", "notifications/message"]

            with pytest.raises(BackendUnavailable, match="exited") as died:
                await call(backend, "die")
            assert died.value.delivered
            deadline = asyncio.get_running_loop().time() + 20
            while not (backend.ready and backend.restarts == 1):
                assert asyncio.get_running_loop().time() < deadline, "the server was not restarted"
                await asyncio.sleep(0.02)
            assert text_of(await call(backend, "echo", text="again")) == "again"
            proc = backend._proc
        finally:
            await backend.stop()
        assert proc is not None and proc.returncode == 0  # stdin closed: it left by itself
        assert len(os.listdir("/proc/self/fd")) <= fds_before + 1  # uvloop opens one of its own once

    LOOPS[loop](scenario())
