"""The canary, mirror and alias stages alone (traffic/canary.py, mirror.py, aliases.py): fake backends,
no gateway."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from paygate.core.domain_errors import Invalid
from paygate.mcp.backends.base import BackendUnavailable
from paygate.mcp.call_context import CallContext
from paygate.mcp.jsonrpc import Message
from paygate.traffic.aliases import ToolAliases, parse_date
from paygate.traffic.canary import Canary
from paygate.traffic.chain import ToolCall, Traffic, Upstream
from paygate.traffic.mirror import Mirror
from paygate.traffic.remote import RemoteServer

PRIMARY: Message = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "primary"}]}}


class Meta:
    def __init__(self) -> None:
        self.meta: dict[str, str] = {}

    def set_meta(self, name: str, value: str) -> None:
        self.meta[name] = value

    def get_meta(self, name: str) -> str | None:
        return self.meta.get(name)


class Events:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, type_: str, actor: str, **data: Any) -> None:
        self.published.append((type_, actor, data))


class FakeBackend:
    label = "fake"

    def __init__(self, fail: bool = False, hang: bool = False) -> None:
        self.ready = True
        self.fail, self.hang = fail, hang
        self.tools: list[dict[str, Any]] = [{"name": "echo"}]
        self.calls: list[Any] = []

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def request(self, method: str, params: Any, timeout: float) -> Message:
        self.calls.append(params)
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            raise BackendUnavailable("down")
        return {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "canary"}]}}


async def primary(_: Upstream) -> Message:
    return PRIMARY


def upstream(tool: str = "echo", params: Any = None) -> Upstream:
    return Upstream("tools/call", params or {"name": tool}, 5.0, tool, CallContext(None, "r"))


def canary_with(backend: FakeBackend, weight: int, threshold: int = 5) -> Canary:
    canary = Canary(Meta(), Events(), Traffic(), True)  # type: ignore[arg-type]
    config = {"url": "http://x/", "weight": weight, "threshold": threshold, "cooldownSeconds": 600}
    canary._install(config, RemoteServer(backend, "http://x/"))  # type: ignore[arg-type]
    return canary


async def test_the_draw_is_randbelow_100_under_the_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([0, 29, 30, 99])
    monkeypatch.setattr(secrets, "randbelow", lambda n: next(draws))  # what canary.py draws with
    canary = canary_with(FakeBackend(), 30)
    texts = [(await canary.around(upstream(), primary))["result"]["content"][0]["text"] for _ in range(4)]
    assert texts == ["canary", "canary", "primary", "primary"]


async def test_transport_failures_open_the_breaker_and_a_cancelled_probe_frees_it() -> None:
    backend = FakeBackend(fail=True)
    canary = canary_with(backend, 100, threshold=2)
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            await canary.around(upstream(), primary)
    assert canary.breaker.state == "open"
    assert (await canary.around(upstream(), primary)) is PRIMARY
    canary.breaker.cooldown = 0  # half-open: one probe goes out; it is cancelled by its client
    backend.fail, backend.hang = False, True
    probe = asyncio.ensure_future(canary.around(upstream(), primary))
    await asyncio.sleep(0.01)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    backend.hang = False
    canary.breaker.cooldown = 0
    assert (await canary.around(upstream(), primary))["result"]["content"][0]["text"] == "canary"
    assert canary.breaker.snapshot()["state"] == "closed"


async def test_tools_the_canary_does_not_list_and_a_disconnected_canary_stay_on_the_primary() -> None:
    backend = FakeBackend()
    canary = canary_with(backend, 100)
    assert (await canary.around(upstream("other"), primary)) is PRIMARY
    backend.ready = False
    assert (await canary.around(upstream(), primary)) is PRIMARY
    assert backend.calls == []


async def test_the_mirror_copies_without_the_progress_token_and_drops_while_disconnected() -> None:
    shadow = FakeBackend()
    mirror = Mirror(Meta(), Events(), Traffic(), True, None)  # type: ignore[arg-type]
    mirror._install({"url": "http://x/", "percentage": 100, "timeoutMs": 100}, RemoteServer(shadow, "http://x/"))  # type: ignore[arg-type]
    params = {"name": "echo", "arguments": {}, "_meta": {"progressToken": 7}}
    assert (await mirror.around(upstream(params=params), primary)) is PRIMARY
    await asyncio.sleep(0.01)
    assert shadow.calls == [{"name": "echo", "arguments": {}}]
    shadow.ready = False
    await mirror.around(upstream(), primary)
    assert (mirror.mirrored, mirror.dropped, mirror.completed) == (1, 1, 1)
    await mirror.close()


def test_a_malformed_stored_alias_table_is_ignored() -> None:
    meta = Meta()
    aliases = ToolAliases(meta, Events(), Traffic(), lambda: {"add"})  # type: ignore[arg-type]
    aliases.set("sum", "add", True, None, None, "admin")
    meta.meta["traffic.tool_aliases"] = '{"x": {"no": "to"}}'
    aliases.reload()
    assert list(aliases.table) == ["sum"]


async def test_an_alias_call_gets_a_new_params_dict() -> None:
    aliases = ToolAliases(Meta(), Events(), Traffic(), lambda: {"add"})  # type: ignore[arg-type]
    aliases.set("sum", "add", "2026-01-01", "Wed, 30 Jun 2027 00:00:00 GMT", None, "admin")
    params = {"name": "sum", "arguments": {}}
    call = ToolCall(1, "sum", params, CallContext(None, "r"))
    seen: list[ToolCall] = []

    async def proceed(c: ToolCall) -> Message:
        seen.append(c)
        return PRIMARY

    await aliases.around(call, proceed)
    assert params["name"] == "sum" and seen[0].params["name"] == "add" and seen[0].tool == "add"
    assert call.ctx.headers_out == [(b"deprecation", b"@1767225600"), (b"sunset", b"Wed, 30 Jun 2027 00:00:00 GMT")]


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-13-01", "10000-01-01T00:00:00Z"])
def test_bad_dates_are_invalid(text: str) -> None:
    with pytest.raises(Invalid):
        parse_date(text, "sunset")


async def test_a_peers_weight_change_keeps_the_connection_and_a_peers_delete_stops_it() -> None:
    backend = FakeBackend()
    canary = canary_with(backend, 10)
    server = canary.server
    meta = canary.store
    meta.set_meta("traffic.canary", '{"url": "http://x/", "weight": 70, "threshold": 3, "cooldownSeconds": 1}')
    canary.reload()
    assert canary.server is server and canary.weight == 70 and canary.breaker.threshold == 3
    meta.set_meta("traffic.canary", "null")
    canary.reload()
    assert canary.server is None and not canary.enabled
    await canary.close()
