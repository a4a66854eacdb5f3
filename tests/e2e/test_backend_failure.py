"""When the backend dies: readiness, clear errors, no charge while down, automatic recovery;
and a backend that cannot start at all makes `wrap` exit non-zero with a one-line error."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    CLI,
    ECHO_COMMAND,
    PYTHON,
    Gateway,
    echo_http_server,
    free_port,
    running_gateway,
    wait_until,
)

pytestmark = pytest.mark.e2e

BACKEND_UNAVAILABLE = -32003


def ready_status(gw: Gateway) -> int:
    return gw.client.get("/ready").status_code


def add(gw: Gateway, key: str, a: int = 20, b: int = 22) -> dict[str, Any]:
    return gw.call_tool("add", {"a": a, "b": b}, key)


def assert_unavailable(reply: dict[str, Any]) -> None:
    error = reply.get("error")
    assert isinstance(error, dict), reply
    assert error["code"] == BACKEND_UNAVAILABLE
    assert "unavailable" in str(error["message"]).lower()


def test_a_crashed_stdio_backend_is_reported_then_restarted(tmp_path: Path) -> None:
    gate = tmp_path / "hold-restart"  # while this file exists, a (re)starting echo server waits
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", env={"ECHO_START_GATE": str(gate)}) as gw:
        key = gw.create_key(10)
        assert add(gw, key)["result"]["structuredContent"] == {"result": 42}
        assert ready_status(gw) == 200

        gate.touch()
        assert_unavailable(gw.call_tool("crash", {}, key))
        wait_until(lambda: ready_status(gw) == 503, 10, "/ready to turn 503")
        assert gw.client.get("/ready").json()["checks"]["backend"] is False
        health = gw.client.get("/health")
        assert health.status_code == 200 and health.json()["backend"]["ready"] is False  # still alive

        credits = gw.balance(key)
        assert_unavailable(add(gw, key))
        assert gw.balance(key) == credits  # refused before the backend: not charged
        assert "add" in {t["name"] for t in gw.rpc("tools/list").json()["result"]["tools"]}

        gate.unlink()
        wait_until(lambda: ready_status(gw) == 200, 30, "the backend to be restarted")
        assert add(gw, key, 1, 2)["result"]["structuredContent"] == {"result": 3}
        assert "restarting" in gw.stderr()


async def test_in_flight_calls_fail_fast_when_the_backend_dies(tmp_path: Path) -> None:
    gate = tmp_path / "hold-restart"
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", env={"ECHO_START_GATE": str(gate)}) as gw:
        key = gw.create_key(10)
        body = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 60}}}
        async with httpx.AsyncClient(base_url=gw.url, timeout=30.0) as client:
            slow = [
                asyncio.create_task(client.post("/mcp", json={**body, "id": i}, headers={"X-API-Key": key}))
                for i in range(4)
            ]
            deadline = asyncio.get_running_loop().time() + 10
            while (await client.get("/health")).json()["inflight"] < 4:
                assert asyncio.get_running_loop().time() < deadline, "the slow calls never got in flight"
                await asyncio.sleep(0.02)
            gate.touch()
            crash = await client.post(
                "/mcp",
                headers={"X-API-Key": key},
                json={"jsonrpc": "2.0", "id": "boom", "method": "tools/call", "params": {"name": "crash"}},
            )
            replies = await asyncio.wait_for(asyncio.gather(*slow), 10)  # not the 60 s they asked for
        assert_unavailable(crash.json())
        assert sorted(r.json()["id"] for r in replies) == [0, 1, 2, 3]
        for reply in replies:
            assert_unavailable(reply.json())
        gate.unlink()
        wait_until(lambda: ready_status(gw) == 200, 30, "the backend to be restarted")


def test_a_remote_backend_that_goes_away_is_reconnected() -> None:
    port = free_port()
    with echo_http_server(port) as backend, running_gateway("--remote-url", backend.url, "--rate-limit", "0") as gw:
        key = gw.create_key(10)
        assert add(gw, key)["result"]["structuredContent"] == {"result": 42}
        backend.stop()

        assert_unavailable(add(gw, key))  # the failure that tells the gateway it is down ...
        assert gw.balance(key) == 9  # ... was never delivered (connection refused), so it costs nothing
        wait_until(lambda: ready_status(gw) == 503, 10, "/ready to turn 503")
        assert_unavailable(add(gw, key))
        assert gw.balance(key) == 9

        with echo_http_server(port):
            wait_until(lambda: ready_status(gw) == 200, 30, "the gateway to reconnect")
            assert add(gw, key, 2, 2)["result"]["structuredContent"] == {"result": 4}


@pytest.mark.parametrize(
    "backend",
    [
        ["--server", "/nonexistent/mcp-server --flag"],
        ["--server", f"{PYTHON} -c 'import sys; sys.exit(4)'"],
        ["--remote-url", "http://127.0.0.1:{port}/mcp"],
        ["--server", "cat"],
    ],
    ids=["missing-command", "exits-at-once", "nothing-listening", "not-an-mcp-server"],
)
def test_a_backend_that_cannot_start_is_a_clean_error(backend: list[str]) -> None:
    backend = [arg.replace("{port}", str(free_port())) for arg in backend]  # nothing listens there
    result = subprocess.run(
        [CLI, "wrap", "--port", "0", "--json", "--state-file", ":memory:", *backend],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr  # as docs/configuration.md says
    assert "error: backend failed to start" in result.stderr
    assert "Traceback" not in result.stderr and "Application startup failed" not in result.stderr  # one line
    if "sys.exit(4)" in backend[1]:
        assert "exit code 4" in result.stderr, result.stderr
    assert '"event": "ready"' not in result.stdout
    if backend[1] == "cat":  # it echoes initialize back: say so, not "which client is it for"
        assert "not an MCP server" in result.stderr, result.stderr
    if "/nonexistent/mcp-server" in backend[1]:
        assert "/nonexistent/mcp-server" in result.stderr
