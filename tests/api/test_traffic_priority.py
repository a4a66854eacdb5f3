"""The priority queue (docs/traffic.md, "Priority queue"): calls that find a concurrency limit reached wait
by their key's tier, are granted slots highest tier first and in arrival order within a tier, are never
charged while waiting, and get -32005 with Retry-After at their deadline or when the queue is full."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from paygate.traffic.priority import TIERS
from tests.api.test_traffic_concurrency import Holds, in_flight, set_limits
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, text_of, wait_until

DEFAULTS = {
    "enabled": False,
    "maxQueueDepth": 100,
    "maxWaitMs": {"critical": 30000, "high": 20000, "normal": 10000, "low": 5000, "background": 2000},
    "promoteAfterMs": 1000,
}


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gateway:
        yield gateway


def queue(gw: InProcessGateway, **body: Any) -> dict[str, Any]:
    resp = gw.client.post("/admin/priority-queue", headers=gw.admin(), json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/priority-queue", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def queued(gw: InProcessGateway) -> int:
    return int(view(gw)["queued"]["total"])


@pytest.fixture
def holds(gw: InProcessGateway) -> Iterator[Holds]:
    h = Holds(gw)
    try:
        yield h
    finally:
        h.close()
        queue(gw, **DEFAULTS)
        set_limits(gw, maxConcurrentPerKey=0, maxConcurrentPerTool=0)
        wait_until(lambda: in_flight(gw) == 0 and queued(gw) == 0, what="nothing in flight or waiting")


def test_waiting_calls_get_slots_by_tier_then_arrival_and_are_charged_only_once_granted(
    gw: InProcessGateway, holds: Holds
) -> None:
    set_limits(gw, maxConcurrentPerTool=1)
    names = ("holder", "background", "low", "normal1", "high", "normal2", "critical")
    keys = {name: gw.create_key(10, name=name) for name in names}
    tiers = {keys[n]: n for n in ("background", "low", "high", "critical")}
    generous = dict.fromkeys(TIERS, 60_000)  # a loaded machine is slow: nobody's wait may end here
    shown = queue(gw, enabled=True, promoteAfterMs=0, maxWaitMs=generous, keyTiers=tiers)
    assert {(e["key"], e["tier"]) for e in shown["keyTiers"]} == {(masked(k), t) for k, t in tiers.items()}
    held = holds.call(keys["holder"], 1)
    wait_until(lambda: holds.arrived == ["1"], what="the holder at the backend")
    labels = {name: 10 + i for i, name in enumerate(names[1:])}
    holds.release(*(str(n) for n in labels.values()))  # granted calls answer at once
    waiting = []
    for count, name in enumerate(names[1:], 1):  # one at a time, so their arrival order is known
        waiting.append(holds.call(keys[name], labels[name]))
        wait_until(lambda count=count: queued(gw) == count, what=f"{count} calls waiting")  # type: ignore[misc]
    shown = view(gw)
    assert shown["queued"]["byTier"] == {"critical": 1, "high": 1, "normal": 2, "low": 1, "background": 1}
    assert 'paygate_priority_queue_depth{tier="normal"} 2.0' in gw.client.get("/metrics").text
    assert all(gw.balance(keys[n]) == 10 for n in names[1:])  # nobody charged while waiting

    holds.release("1")
    for call in (held, *waiting):
        assert call.result(10).json()["result"]["isError"] is False
    order = ["critical", "high", "normal1", "normal2", "low", "background"]
    assert holds.arrived == ["1", *(str(labels[n]) for n in order)]
    assert all(gw.balance(keys[n]) == 9 for n in names)  # each charged once
    stats = view(gw)["stats"]
    assert stats["byTier"]["normal"]["granted"] == 2 and stats["waits"] == 6 and stats["timeouts"] == 0
    assert 'paygate_priority_queue_waits_total{outcome="granted",tier="normal"} 2.0' in gw.client.get("/metrics").text


def test_a_call_that_waits_past_its_tiers_deadline_gets_32005_and_is_never_charged(
    gw: InProcessGateway, holds: Holds
) -> None:
    set_limits(gw, maxConcurrentPerKey=1)
    queue(gw, enabled=True, maxWaitMs={"normal": 50})
    key = gw.create_key(10)
    held = holds.call(key, 1)
    wait_until(lambda: holds.arrived == ["1"], what="the held call")
    resp = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "late"}}, key=key)
    error = resp.json()["error"]
    assert error["code"] == -32005 and error["data"]["queue"] == "timeout" and error["data"]["limit"] == "key"
    assert error["data"]["tier"] == "normal" and error["data"]["waitedMs"] >= 50
    assert int(resp.headers["retry-after"]) >= 1
    assert gw.balance(key) == 9  # only the held call
    stats = view(gw)["stats"]
    assert stats["timeouts"] == 1 and stats["byTier"]["normal"]["timedOut"] == 1
    holds.release("1")
    held.result(10)


def test_a_full_queue_refuses_at_once_and_the_waiter_inside_still_gets_its_turn(
    gw: InProcessGateway, holds: Holds
) -> None:
    set_limits(gw, maxConcurrentPerTool=1)
    queue(gw, enabled=True, maxQueueDepth=1)
    a, b, c = gw.create_key(10), gw.create_key(10), gw.create_key(10)
    held = holds.call(a, 1)
    wait_until(lambda: holds.arrived == ["1"], what="the held call")
    waiting = holds.call(b, 2)
    wait_until(lambda: queued(gw) == 1, what="one waiter")
    full = gw.rpc("tools/call", {"name": "slow", "arguments": {"seconds": 3}}, key=c)
    assert full.json()["error"]["code"] == -32005 and full.json()["error"]["data"]["queue"] == "full"
    assert int(full.headers["retry-after"]) >= 1
    assert gw.balance(c) == 10 and gw.balance(b) == 10
    assert view(gw)["stats"]["rejectedFull"] == 1
    holds.release("1", "2")
    held.result(10)
    assert text_of(waiting.result(10).json()) == "released 2"
    assert gw.balance(b) == 9 and holds.arrived == ["1", "2"]


def test_switching_the_queue_off_sends_its_waiters_away_uncharged(gw: InProcessGateway, holds: Holds) -> None:
    set_limits(gw, maxConcurrentPerKey=1)
    queue(gw, enabled=True)
    key = gw.create_key(10)
    held = holds.call(key, 1)
    wait_until(lambda: holds.arrived == ["1"], what="the held call")
    waiting = holds.call(key, 2)
    wait_until(lambda: queued(gw) == 1, what="one waiter")
    queue(gw, enabled=False)
    error = waiting.result(10).json()["error"]
    assert error["code"] == -32005 and error["data"]["queue"] == "off"
    assert gw.balance(key) == 9 and queued(gw) == 0
    holds.release("1")
    held.result(10)


def test_raising_a_limit_grants_the_waiters(gw: InProcessGateway, holds: Holds) -> None:
    set_limits(gw, maxConcurrentPerTool=1)
    queue(gw, enabled=True)
    a, b = gw.create_key(10), gw.create_key(10)
    held = holds.call(a, 1)
    wait_until(lambda: holds.arrived == ["1"], what="the held call")
    waiting = holds.call(b, 2)
    wait_until(lambda: queued(gw) == 1, what="one waiter")
    set_limits(gw, maxConcurrentPerTool=2)
    wait_until(lambda: holds.arrived == ["1", "2"], what="the waiter granted")
    holds.release("1", "2")
    held.result(10)
    waiting.result(10)
    assert gw.balance(a) == gw.balance(b) == 9


def test_a_waiter_whose_client_hangs_up_leaves_the_queue_uncharged(gw: InProcessGateway, holds: Holds) -> None:
    set_limits(gw, maxConcurrentPerTool=1)
    queue(gw, enabled=True)
    a, b = gw.create_key(10), gw.create_key(10)
    held = holds.call(a, 1)
    wait_until(lambda: holds.arrived == ["1"], what="the held call")
    body = orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 2}}}
    )
    head = f"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: {b}\r\n"
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        wait_until(lambda: queued(gw) == 1, what="the waiter")
    wait_until(lambda: queued(gw) == 0, what="the abandoned waiter gone")
    assert view(gw)["stats"]["byTier"]["normal"]["cancelled"] == 1
    holds.release("1", "2")
    held.result(10)
    assert holds.arrived == ["1"] and gw.balance(b) == 10
    wait_until(lambda: in_flight(gw) == 0, what="no slot left taken")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"enabled": "yes"}, 400),
        ({"maxQueueDepth": 0}, 400),
        ({"maxQueueDepth": 100_001}, 400),
        ({"maxWaitMs": {"urgent": 5}}, 400),
        ({"maxWaitMs": {"normal": 0}}, 400),
        ({"promoteAfterMs": -1}, 400),
        ({"keyTiers": {"somebody": "vip"}}, 400),
        ({"keyTiers": {"": "high"}}, 400),
        ({"enabled": True, "colour": "red"}, 400),
        ({"enabled": True, "keyTiers": {"pg_no_such_key_0000000000000000": "high"}}, 404),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(gw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    before = view(gw)
    events = len(gw.events("priority_queue.updated"))
    resp = gw.client.post("/admin/priority-queue", headers=gw.admin(), json=body)
    assert resp.status_code == status, resp.text
    assert view(gw) == before
    assert len(gw.events("priority_queue.updated")) == events


def test_one_unknown_key_among_known_ones_changes_nothing(gw: InProcessGateway) -> None:
    known = gw.create_key(1)
    before = view(gw)
    resp = gw.client.post(
        "/admin/priority-queue", headers=gw.admin(), json={"keyTiers": {known: "high", "nobody-alias": "low"}}
    )
    assert resp.status_code == 404 and "nobody" not in resp.text
    assert view(gw) == before


def test_changes_are_audited_kept_across_a_restart_and_keys_go_back_to_normal(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    admin = "admin_" + "q" * 30
    config = tmp_path / "paygate.json"
    config.write_text(orjson.dumps({"priorityQueue": {"enabled": True, "maxWaitMs": {"low": 777}}}).decode())
    args = ("--server", ECHO_COMMAND, "--config", str(config))
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as first:
        shown = view(first)
        assert shown["enabled"] is True and shown["maxWaitMs"]["low"] == 777 and shown["defaultTier"] == "normal"
        vip = first.create_key(10, name="vip")
        alias = first.client.post("/keys/alias", headers=first.admin(), json={"key": vip, "alias": "vip-bot"})
        assert alias.status_code == 200, alias.text
        changed = queue(first, maxQueueDepth=7, promoteAfterMs=0, keyTiers={"vip-bot": "critical"})
        assert changed["keyTiers"] == [{"key": masked(vip), "name": "vip", "tier": "critical"}]
        event = first.events("priority_queue.updated")[-1]
        assert event["actor"] == "admin"
        assert event["data"] == {
            "changed": ["keyTiers", "maxQueueDepth", "promoteAfterMs"],
            "enabled": True,
            "keysAssigned": 1,
        }
        assert vip not in str(event)
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as second:
        shown = view(second)
        assert (shown["maxQueueDepth"], shown["promoteAfterMs"], shown["maxWaitMs"]["low"]) == (7, 0, 777)
        assert shown["keyTiers"] == [{"key": masked(vip), "name": "vip", "tier": "critical"}]
        assert queue(second, keyTiers={vip: None})["keyTiers"] == []
