"""Dedup / idempotency (docs/traffic.md#dedup--idempotency): a repeated X-Idempotency-Key gets the first
call's answer without running or charging it again, per key; concurrent duplicates coalesce; another call
under the same key, or a malformed key, is refused uncharged; a refusal before any charge is not kept."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paygate.traffic.dedup import Dedup
from tests.echo_backend import EchoBackend
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = write_config(tmp_path_factory.mktemp("dedup"), {"dedupEnabled": True})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gateway:
        yield gateway


def dedup_of(gw: InProcessGateway) -> Dedup:
    assert gw.rt is not None
    stage = gw.rt.dispatcher.traffic.stage("dedup")
    assert isinstance(stage, Dedup)
    return stage


def runs(gw: InProcessGateway, seconds: float) -> int:
    assert gw.rt is not None and isinstance(gw.rt.backend, EchoBackend)
    return gw.rt.backend.started.count(seconds)


def call(
    gw: InProcessGateway, key: str, idem: str | bytes | None, tool: str, arguments: dict[str, Any], msg_id: Any = 1
) -> httpx.Response:
    headers: dict[str, Any] = {} if idem is None else {"X-Idempotency-Key": idem}
    resp = gw.rpc("tools/call", {"name": tool, "arguments": arguments}, key=key, msg_id=msg_id, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp


def view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/dedup", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def concurrently(gw: InProcessGateway, requests: list[tuple[str, str | None, dict[str, Any]]]) -> list[Any]:
    """POST the calls at once (one connection each): [(key, idempotency key, arguments of slow)]."""
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:

        async def one(i: int, key: str, idem: str | None, arguments: dict[str, Any]) -> Any:
            headers = {"X-API-Key": key, **({"X-Idempotency-Key": idem} if idem is not None else {})}
            params = {"name": "slow", "arguments": arguments}
            body = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}
            resp = await client.post("/mcp", json=body, headers=headers)
            assert resp.status_code == 200, resp.text
            return resp.json()

        return list(await asyncio.gather(*(one(i, *r) for i, r in enumerate(requests))))


def test_a_repeat_gets_the_first_answer_unrun_and_uncharged(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    first = call(gw, key, "order-1", "slow", {"seconds": 0.001}, msg_id="x")
    assert "x-idempotent-replay" not in first.headers and gw.balance(key) == 9
    for msg_id in (7, "y"):
        again = call(gw, key, "order-1", "slow", {"seconds": 0.001}, msg_id=msg_id)
        assert again.headers["x-idempotent-replay"] == "true" and again.headers["x-credits-remaining"] == "9"
        assert again.json() == {**first.json(), "id": msg_id}
    assert runs(gw, 0.001) == 1 and gw.balance(key) == 9
    seen = view(gw)
    assert seen["hits"] >= 2 and seen["creditsSaved"] >= 2


def test_keys_are_scoped_to_the_api_key(gw: InProcessGateway) -> None:
    a, b = gw.create_key(10), gw.create_key(10)
    call(gw, a, "same", "slow", {"seconds": 0.002})
    assert "x-idempotent-replay" not in call(gw, b, "same", "slow", {"seconds": 0.002}).headers
    assert runs(gw, 0.002) == 2 and gw.balance(a) == gw.balance(b) == 9


def test_the_same_key_for_another_call_is_refused_uncharged(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    call(gw, key, "k", "slow", {"seconds": 0.003})
    for tool, arguments in (("slow", {"seconds": 0.0031}), ("echo", {"text": "x"})):
        error = call(gw, key, "k", tool, arguments).json()["error"]
        assert error["code"] == -32602 and "another call" in error["message"]
    assert runs(gw, 0.0031) == 0 and gw.balance(key) == 9
    assert "x-idempotent-replay" in call(gw, key, "k", "slow", {"seconds": 0.003}).headers  # still the first's


@pytest.mark.parametrize("idem", ["", b"a\tb", "x" * 201, b"caf\xc3\xa9"])
def test_a_malformed_key_is_refused_unrun_and_uncharged(gw: InProcessGateway, idem: str | bytes) -> None:
    key = gw.create_key(10)
    error = call(gw, key, idem, "slow", {"seconds": 0.004}).json()["error"]
    assert error["code"] == -32602 and "X-Idempotency-Key must be 1-200 printable ASCII" in error["message"]
    assert runs(gw, 0.004) == 0 and gw.balance(key) == 10
    assert "result" in call(gw, key, "x" * 200, "echo", {"text": "ok"}).json()  # 200 is fine


def test_concurrent_duplicates_coalesce_onto_one_call(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    before = view(gw)["coalesced"]
    replies = asyncio.run(concurrently(gw, [(key, "burst", {"seconds": 0.3})] * 5))
    assert runs(gw, 0.3) == 1 and gw.balance(key) == 9
    assert [r["id"] for r in replies] == list(range(5))
    assert all(r["result"] == replies[0]["result"] for r in replies)
    assert view(gw)["coalesced"] - before == 4


def test_a_refusal_before_any_charge_is_not_kept(gw: InProcessGateway) -> None:
    key = gw.create_key(0)
    reply = call(gw, key, "pay-later", "slow", {"seconds": 0.005}).json()
    assert reply["error"]["data"]["reason"] == "insufficient_credits"
    assert gw.client.post("/topup", json={"key": key, "credits": 2}, headers=gw.admin()).status_code == 200
    again = call(gw, key, "pay-later", "slow", {"seconds": 0.005})
    assert "result" in again.json() and "x-idempotent-replay" not in again.headers
    assert runs(gw, 0.005) == 1 and gw.balance(key) == 1


def test_a_charged_failure_is_kept_so_a_retry_is_not_charged_again(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    first = call(gw, key, "f", "fail", {}).json()
    assert first["result"]["isError"] is True and gw.balance(key) == 9  # refundOnFailure is off
    again = call(gw, key, "f", "fail", {})
    assert again.headers["x-idempotent-replay"] == "true" and again.json()["result"] == first["result"]
    assert gw.balance(key) == 9


def test_a_replay_is_never_given_to_a_caller_the_gate_refuses(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    call(gw, key, "s", "slow", {"seconds": 0.006})
    assert gw.client.post("/keys/suspend", json={"key": key}, headers=gw.admin()).status_code == 200
    reply = call(gw, key, "s", "slow", {"seconds": 0.006}).json()
    assert reply["error"]["data"]["reason"] == "key_suspended"


def test_the_window_ends(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    dedup = dedup_of(gw)
    real = dedup.clock
    start = real()
    try:
        dedup.clock = lambda: start
        call(gw, key, "w", "slow", {"seconds": 0.007})
        dedup.clock = lambda: start + 299
        assert "x-idempotent-replay" in call(gw, key, "w", "slow", {"seconds": 0.007}).headers
        dedup.clock = lambda: start + 301
        assert "x-idempotent-replay" not in call(gw, key, "w", "slow", {"seconds": 0.007}).headers
    finally:
        dedup.clock = real
    assert runs(gw, 0.007) == 2 and gw.balance(key) == 8


def test_calls_without_the_header_are_never_merged_unless_auto_key_is_on(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    for _ in range(2):
        call(gw, key, None, "slow", {"seconds": 0.008})
    assert runs(gw, 0.008) == 2
    try:
        assert gw.client.post("/admin/dedup", json={"autoKey": True}, headers=gw.admin()).json()["autoKey"] is True
        call(gw, key, None, "slow", {"seconds": 0.0081})
        assert "x-idempotent-replay" in call(gw, key, None, "slow", {"seconds": 0.0081}).headers
        assert runs(gw, 0.0081) == 1 and gw.balance(key) == 7
    finally:
        gw.client.post("/admin/dedup", json={"autoKey": False}, headers=gw.admin())


def test_the_admin_view_clearing_and_metrics(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    call(gw, key, "v", "slow", {"seconds": 0.009})
    call(gw, key, "v", "slow", {"seconds": 0.009})
    seen = view(gw)
    assert seen["enabled"] is True and seen["windowSeconds"] == 300 and seen["maxEntries"] == 10_000
    assert seen["entries"] >= 1 and seen["inFlight"] == 0 and seen["autoKey"] is False
    resp = gw.client.delete("/admin/dedup", headers=gw.admin())
    assert resp.status_code == 200 and resp.json()["cleared"] == seen["entries"] and view(gw)["entries"] == 0
    assert gw.events("dedup.cleared")[-1]["data"] == {"removed": seen["entries"]}
    assert "x-idempotent-replay" not in call(gw, key, "v", "slow", {"seconds": 0.009}).headers
    metrics = gw.client.get("/metrics").text
    for name in (
        "paygate_dedup_entries 1.0",
        'paygate_dedup_replays_total{kind="finished"}',
        'paygate_dedup_replays_total{kind="coalesced"}',
        "paygate_dedup_conflicts_total",
        "paygate_dedup_credits_saved_total",
    ):
        assert name in metrics, name


@pytest.mark.parametrize(
    "body",
    [{}, {"windowSeconds": 0}, {"maxEntries": 0}, {"enabled": "yes"}, {"windowSeconds": 86_401}, {"x": 1}, [True]],
)
def test_bad_configuration_is_refused_and_changes_nothing(gw: InProcessGateway, body: Any) -> None:
    fields = ("enabled", "windowSeconds", "maxEntries", "autoKey")
    before = {k: view(gw)[k] for k in fields}
    resp = gw.client.post("/admin/dedup", json=body, headers=gw.admin())
    assert resp.status_code == 400, resp.text
    assert {k: view(gw)[k] for k in fields} == before
    assert gw.client.delete("/admin/dedup").status_code == 401


def test_off_by_default_and_runtime_settings_persist(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-dedup-tests") as gw:
        key = gw.create_key(10)
        assert view(gw)["enabled"] is False and gw.rt is not None and not gw.rt.dispatcher.traffic.calls_on
        for _ in range(2):  # off: the header is not looked at
            assert "x-idempotent-replay" not in call(gw, key, "k", "echo", {"text": "a"}).headers
        assert gw.balance(key) == 8
        body = {"enabled": True, "windowSeconds": 60, "maxEntries": 2}
        resp = gw.client.post("/admin/dedup", json=body, headers=gw.admin())
        assert resp.status_code == 200 and resp.json()["windowSeconds"] == 60
        for idem in ("a", "b", "c"):
            call(gw, key, idem, "echo", {"text": idem})
        assert view(gw)["entries"] == 2  # the bound: the least recently used went first
        assert "x-idempotent-replay" not in call(gw, key, "a", "echo", {"text": "a"}).headers
        assert gw.events("dedup.configured")[-1]["data"] == {**body, "autoKey": False}
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-dedup-tests") as gw:
        seen = view(gw)
        assert (seen["enabled"], seen["windowSeconds"], seen["maxEntries"]) == (True, 60, 2)
        assert gw.rt is not None and gw.rt.dispatcher.traffic.calls_on
        off = gw.client.post("/admin/dedup", json={"enabled": False}, headers=gw.admin()).json()
        assert off["enabled"] is False and not gw.rt.dispatcher.traffic.calls_on


def test_with_the_cache_a_replay_and_a_hit_are_both_free(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"dedupEnabled": True, "cacheTtlSeconds": 60})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gw:
        key = gw.create_key(10)
        assert call(gw, key, "one", "add", {"a": 1, "b": 2}).headers["x-cache"] == "MISS"
        assert call(gw, key, "two", "add", {"a": 1, "b": 2}).headers["x-cache"] == "HIT"
        replay = call(gw, key, "two", "add", {"a": 1, "b": 2})  # the hit's answer is kept for its key too
        assert replay.headers["x-idempotent-replay"] == "true" and "x-cache" not in replay.headers
        assert gw.balance(key) == 9


def test_browsers_may_send_the_key_and_read_the_replay_header(gw: InProcessGateway) -> None:
    origin = {"Origin": "http://localhost:5173"}  # a loopback page: /mcp allows it by default
    preflight = gw.client.options(
        "/mcp",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-idempotency-key",
        },
    )
    assert preflight.status_code == 204 and "X-Idempotency-Key" in preflight.headers["access-control-allow-headers"]
    assert "X-Idempotent-Replay" in gw.client.get("/health", headers=origin).headers["access-control-expose-headers"]


def test_a_2026_07_28_client_resending_after_a_dropped_stream_is_not_charged_twice(gw: InProcessGateway) -> None:
    modern = "2026-07-28"
    meta = {
        "io.modelcontextprotocol/protocolVersion": modern,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    }
    key = gw.create_key(10)
    headers = {
        "MCP-Protocol-Version": modern,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "slow",
        "Accept": "application/json, text/event-stream",
        "X-API-Key": key,
        "X-Idempotency-Key": "stream-1",
    }
    params = {"name": "slow", "arguments": {"seconds": 0.011}, "_meta": meta}
    replies = []
    for msg_id in (1, 2):  # the second: the same request sent again, as after a lost answer
        body = {"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": params}
        resp = gw.client.post("/mcp", json=body, headers=headers)
        assert resp.status_code == 200, resp.text
        replies.append(resp)
    assert [r.json()["result"]["resultType"] for r in replies] == ["complete", "complete"]
    assert replies[1].json()["id"] == 2 and replies[1].headers["x-idempotent-replay"] == "true"
    assert replies[0].json()["result"]["content"] == replies[1].json()["result"]["content"]
    assert runs(gw, 0.011) == 1 and gw.balance(key) == 9
