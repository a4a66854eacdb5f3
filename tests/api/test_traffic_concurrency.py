"""Concurrency limits (docs/traffic.md, "Concurrency limits"): -32005 with Retry-After before any charge,
slots held for the whole call and always given back, GET/POST /admin/concurrency, persistence, metrics.

Calls are held at the backend by `Holds` (the echo double's `slow` tool waits until the test releases
its label), so every ordering here comes from events, never from sleeps.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, text_of, wait_until


class Holds:
    """The echo double's `slow(seconds)` becomes: note the label `f"{seconds:g}"`, then wait until the
    test releases it. `arrived` is the order in which calls reached the backend."""

    def __init__(self, gw: InProcessGateway) -> None:
        self.gw = gw
        self.arrived: list[str] = []
        self._gates: dict[str, asyncio.Event] = {}
        self._pool = ThreadPoolExecutor(16)
        backend: Any = gw.rt.backend if gw.rt else None
        self._handlers = backend._handlers
        self._original = self._handlers["slow"]
        self._handlers["slow"] = self._hold

    async def _hold(self, seconds: float) -> str:
        label = f"{seconds:g}"
        self.arrived.append(label)
        await self._gates.setdefault(label, asyncio.Event()).wait()
        return f"released {label}"

    def release(self, *labels: str) -> None:
        def go() -> None:
            for label in labels:
                self._gates.setdefault(label, asyncio.Event()).set()

        self.gw.call_in_loop(go)

    def call(self, key: str, label: float, msg_id: int = 1) -> Future[httpx.Response]:
        """A held call in the background (its own connection): the future is its HTTP answer."""
        params = {"name": "slow", "arguments": {"seconds": label}}
        body = {"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": params}

        def run() -> httpx.Response:
            with httpx.Client(base_url=self.gw.url, timeout=30) as client:
                return client.post("/mcp", json=body, headers={"X-API-Key": key})

        return self._pool.submit(run)

    def close(self) -> None:
        self.release(*list(self._gates), *[f"{n:g}" for n in range(200)])
        self._pool.shutdown(wait=True)
        self._handlers["slow"] = self._original


def in_flight(gw: InProcessGateway) -> int:
    return int(gw.client.get("/admin/concurrency", headers=gw.admin()).json()["inFlight"]["total"])


def set_limits(gw: InProcessGateway, **body: Any) -> dict[str, Any]:
    resp = gw.client.post("/admin/concurrency", headers=gw.admin(), json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gateway:
        yield gateway


@pytest.fixture
def holds(gw: InProcessGateway) -> Iterator[Holds]:
    h = Holds(gw)
    try:
        yield h
    finally:
        h.close()
        set_limits(gw, maxConcurrentPerKey=0, maxConcurrentPerTool=0)
        wait_until(lambda: in_flight(gw) == 0, what="every slot given back")


def test_a_key_over_its_limit_gets_32005_with_retry_after_before_any_charge(gw: InProcessGateway, holds: Holds) -> None:
    view = set_limits(gw, maxConcurrentPerKey=1)
    assert view["enabled"] is True and view["maxConcurrentPerKey"] == 1 and view["maxConcurrentPerTool"] == 0
    key, other = gw.create_key(10), gw.create_key(10)
    held = holds.call(key, 1)
    wait_until(lambda: holds.arrived == ["1"], what="the first call at the backend")
    assert gw.balance(key) == 9  # the held call was charged when it was admitted

    refused = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}, key=key, msg_id=5)
    error = refused.json()["error"]
    assert refused.status_code == 200 and refused.json()["id"] == 5
    assert error["code"] == -32005
    assert error["data"]["reason"] == "concurrency_limited" and error["data"]["httpStatus"] == 429
    assert error["data"]["limit"] == "key" and error["data"]["maxConcurrent"] == 1 and error["data"]["tool"] == "echo"
    retry = int(refused.headers["retry-after"])
    assert retry >= 1 and error["data"]["retryAfterSeconds"] == retry
    assert gw.balance(key) == 9  # refused before the gate: never charged

    assert text_of(gw.call_tool("echo", {"text": "free"}, other)) == "free"  # another key has its own slots
    holds.release("1")
    assert text_of(held.result(10).json()) == "released 1"
    wait_until(lambda: in_flight(gw) == 0, what="the slot given back")
    assert text_of(gw.call_tool("echo", {"text": "again"}, key)) == "again"
    assert gw.balance(key) == 8
    rejections = gw.client.get("/admin/concurrency", headers=gw.admin()).json()["rejections"]
    assert rejections["key"]["immediate"] >= 1 and rejections["total"] >= 1


def test_a_tool_over_its_limit_refuses_every_key_but_other_tools_run(gw: InProcessGateway, holds: Holds) -> None:
    set_limits(gw, maxConcurrentPerTool=1)
    a, b = gw.create_key(10), gw.create_key(10)
    held = holds.call(a, 2)
    wait_until(lambda: "2" in holds.arrived, what="the held call")
    refused = gw.call_tool("slow", {"seconds": 3}, b)
    assert refused["error"]["code"] == -32005 and refused["error"]["data"]["limit"] == "tool"
    assert refused["error"]["data"]["tool"] == "slow"
    assert gw.balance(b) == 10
    assert text_of(gw.call_tool("echo", {"text": "other tool"}, b)) == "other tool"
    assert gw.balance(b) == 9
    holds.release("2")
    assert held.result(10).json()["result"]["isError"] is False


def test_calls_without_a_usable_key_take_no_slot_and_get_the_gates_answer(gw: InProcessGateway, holds: Holds) -> None:
    set_limits(gw, maxConcurrentPerTool=1)
    key = gw.create_key(10)
    held = holds.call(key, 4)
    wait_until(lambda: "4" in holds.arrived, what="the held call")
    for raw in (None, "pg_not_a_key_at_all_000000000000"):
        answer = gw.call_tool("slow", {"seconds": 5}, raw)
        assert answer["error"]["code"] == -32402, answer  # the gate's refusal, not -32005
    revoked = gw.create_key(10)
    assert gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": revoked}).status_code == 200
    assert gw.call_tool("slow", {"seconds": 5}, revoked)["error"]["data"]["reason"] == "key_revoked"
    assert in_flight(gw) == 1
    holds.release("4")
    held.result(10)


def test_the_view_shows_calls_in_flight_per_masked_key_and_per_tool(gw: InProcessGateway, holds: Holds) -> None:
    set_limits(gw, maxConcurrentPerKey=5, maxConcurrentPerTool=5)
    key = gw.create_key(10, name="busy")
    calls = [holds.call(key, 6), holds.call(key, 7)]
    wait_until(lambda: sorted(holds.arrived) == ["6", "7"], what="two calls in flight")
    view = gw.client.get("/admin/concurrency", headers=gw.admin()).json()
    assert view["inFlight"]["total"] == 2 and view["inFlight"]["byTool"] == {"slow": 2}
    assert view["inFlight"]["byKey"] == [{"key": masked(key), "name": "busy", "inFlight": 2}]
    assert view["scope"] == "instance" and view["queued"] == 0
    assert key not in gw.client.get("/admin/concurrency", headers=gw.admin()).text
    metrics = gw.client.get("/metrics").text
    assert "paygate_concurrency_in_flight 2.0" in metrics
    holds.release("6", "7")
    for call in calls:
        call.result(10)
    wait_until(lambda: in_flight(gw) == 0, what="both slots given back")
    assert 'paygate_concurrency_rejections_total{cause="immediate",limit="key"}' in gw.client.get("/metrics").text


def test_a_client_that_hangs_up_mid_call_gives_its_slot_back(gw: InProcessGateway, holds: Holds) -> None:
    set_limits(gw, maxConcurrentPerKey=1)
    key = gw.create_key(10)
    body = orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 8}}}
    )
    request = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-API-Key: {key}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(request)
        wait_until(lambda: "8" in holds.arrived and in_flight(gw) == 1, what="the call held at the backend")
        refused = gw.call_tool("echo", {"text": "x"}, key)
        assert refused["error"]["code"] == -32005
    # the connection is gone: the gateway cancels the call (after its first 50 ms) and frees the slot
    wait_until(lambda: in_flight(gw) == 0, what="the slot of the abandoned call")
    assert text_of(gw.call_tool("echo", {"text": "after"}, key)) == "after"


def test_a_call_that_fails_inside_still_gives_its_slot_back(gw: InProcessGateway, holds: Holds) -> None:
    set_limits(gw, maxConcurrentPerKey=1)
    key = gw.create_key(10)
    for _ in range(3):  # a tool error, then an unknown tool (refused inside, by the gate's own checks)
        assert gw.call_tool("fail", {}, key)["result"]["isError"] is True
        assert gw.call_tool("no_such_tool", {}, key)["error"]["code"] == -32602
    assert in_flight(gw) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"maxConcurrentPerKey": -1},
        {"maxConcurrentPerKey": "2"},
        {"maxConcurrentPerTool": 1.5},
        {"maxConcurrentPerKey": 2_000_000},
        {"maxConcurrentPerKey": 2, "extra": 1},
        {"maxConcurrentPerKey": None},
    ],
)
def test_bad_changes_are_refused_and_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = gw.client.get("/admin/concurrency", headers=gw.admin()).json()
    events = len(gw.events("concurrency.updated"))
    resp = gw.client.post("/admin/concurrency", headers=gw.admin(), json=body)
    assert resp.status_code == 400, resp.text
    assert gw.client.get("/admin/concurrency", headers=gw.admin()).json() == before
    assert len(gw.events("concurrency.updated")) == events


def test_changes_need_an_admin_and_are_audited(gw: InProcessGateway) -> None:
    assert gw.client.post("/admin/concurrency", json={"maxConcurrentPerKey": 1}).status_code == 401
    assert gw.client.get("/admin/concurrency").status_code == 401
    set_limits(gw, maxConcurrentPerKey=3)
    event = gw.events("concurrency.updated")[-1]
    assert event["actor"] == "admin" and event["data"] == {"maxConcurrentPerKey": 3, "maxConcurrentPerTool": 0}
    view = set_limits(gw, maxConcurrentPerTool=4)  # the other one stays
    assert (view["maxConcurrentPerKey"], view["maxConcurrentPerTool"]) == (3, 4)

    def audited() -> list[dict[str, Any]]:
        found = gw.client.get("/audit", headers=gw.admin(), params={"types": "concurrency.updated"}).json()
        return list(found["events"])

    wait_until(lambda: len(audited()) >= 2, what="both changes in the audit log")
    assert audited()[0]["metadata"] == {"maxConcurrentPerKey": 3, "maxConcurrentPerTool": 4}
    assert set_limits(gw, maxConcurrentPerKey=0, maxConcurrentPerTool=0)["enabled"] is False


def test_the_config_file_sets_the_limits_and_an_admins_change_survives_a_restart(tmp_path: Path) -> None:
    config = tmp_path / "paygate.json"
    config.write_text(orjson.dumps({"maxConcurrentPerKey": 2, "maxConcurrentPerTool": 7}).decode())
    state = str(tmp_path / "state.db")
    admin = "admin_" + "k" * 30
    args = ("--server", ECHO_COMMAND, "--config", str(config))
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as first:
        view = first.client.get("/admin/concurrency", headers=first.admin()).json()
        assert (view["maxConcurrentPerKey"], view["maxConcurrentPerTool"]) == (2, 7)
        set_limits(first, maxConcurrentPerKey=1)
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as second:
        view = second.client.get("/admin/concurrency", headers=second.admin()).json()
        assert (view["maxConcurrentPerKey"], view["maxConcurrentPerTool"]) == (1, 7)
        key = second.create_key(5)
        assert text_of(second.call_tool("echo", {"text": "ok"}, key)) == "ok"


def test_a_change_written_by_another_instance_of_a_fleet_is_picked_up_by_the_ticker(gw: InProcessGateway) -> None:
    assert gw.rt is not None
    store = gw.rt.store
    peer = orjson.dumps({"maxConcurrentPerKey": 6, "maxConcurrentPerTool": 0}).decode()
    gw.call_in_loop(store.set_meta, "traffic.concurrency", peer)  # as a peer's POST leaves it in Redis
    gw.tick(time.time() + 60)
    view = gw.client.get("/admin/concurrency", headers=gw.admin()).json()
    assert (view["enabled"], view["maxConcurrentPerKey"]) == (True, 6)
    peer_queue = orjson.dumps({"enabled": True, "maxQueueDepth": 3, "keyTiers": {}}).decode()
    gw.call_in_loop(store.set_meta, "traffic.priority_queue", peer_queue)
    gw.tick(time.time() + 120)
    queue = gw.client.get("/admin/priority-queue", headers=gw.admin()).json()
    assert (queue["enabled"], queue["maxQueueDepth"]) == (True, 3)
    set_limits(gw, maxConcurrentPerKey=0, maxConcurrentPerTool=0)
    reset = gw.client.post("/admin/priority-queue", headers=gw.admin(), json={"enabled": False, "maxQueueDepth": 100})
    assert reset.status_code == 200
