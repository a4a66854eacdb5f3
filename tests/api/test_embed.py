"""paygate.embed: the gateway started and stopped from a Python program, on the caller's loop and on a
thread of its own; a failed start is an error, not a hang; stopping closes the port."""

from __future__ import annotations

import socket

import httpx
import pytest

from paygate.config import load_settings
from paygate.embed import GatewayThread, serve
from paygate.mcp.backends.base import BackendUnavailable
from tests.echo_backend import EchoBackend

ADMIN = "embedded-admin-key-0123456789"


def _settings(**extra: object) -> object:
    return load_settings(
        {"serverCommand": "unused", "port": 0, "stateFile": ":memory:", "adminKey": ADMIN, **extra}, environ={}
    )


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _paid_call(url: str) -> tuple[dict[str, object], int]:
    with httpx.Client(base_url=url, timeout=10) as http:
        key = http.post("/keys", json={"name": "e", "credits": 5}, headers={"X-Admin-Key": ADMIN}).json()["key"]
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "x"}},
        }
        reply = http.post("/mcp", json=body, headers={"X-API-Key": key}).json()
        return reply, http.get("/balance", headers={"X-API-Key": key}).json()["credits"]


async def test_serve_runs_on_the_callers_loop_and_stops_at_the_blocks_end() -> None:
    settings = _settings(toolPricing={"echo": {"creditsPerCall": 2}})
    async with serve(settings, backend=EchoBackend()) as gateway:  # type: ignore[arg-type]
        assert gateway.admin_key == ADMIN and gateway.url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            key = (await http.post("/keys", json={"name": "e", "credits": 5}, headers={"X-Admin-Key": ADMIN})).json()[
                "key"
            ]
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "x"}},
            }
            reply = (await http.post("/mcp", json=body, headers={"X-API-Key": key})).json()
            assert reply["result"]["content"][0]["text"] == "x"
            assert (await http.get("/balance", headers={"X-API-Key": key})).json()["credits"] == 3
        port = gateway.port
    assert _port_closed(port)


def test_a_thread_serves_a_program_that_is_not_async() -> None:
    with GatewayThread(_settings(), backend=EchoBackend()) as gateway:  # type: ignore[arg-type]
        reply, credits = _paid_call(gateway.url)
        assert "result" in reply and credits == 4
        port = gateway.port
    assert _port_closed(port)


class _BrokenBackend(EchoBackend):
    async def start(self) -> None:
        raise BackendUnavailable("the server exited at once")


def test_a_backend_that_cannot_start_is_an_error_not_a_hang() -> None:
    thread = GatewayThread(_settings(), backend=_BrokenBackend())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="did not start"):
        thread.start(timeout=30)
    thread.stop()
