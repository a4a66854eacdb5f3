"""Three gateways (`paygate-mcp wrap --redis-url …`) sharing one real redis-server: keys, admin changes and
money are one fleet's, whichever instance a request lands on.

Propagation is polled with a deadline; the times measured are printed (`pytest -s`), never asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from tests.redis_fleet import (
    balances,
    credit_history,
    paid_calls,
    start_fleet,
    stop_all,
    timed,
    total,
)
from tests.redis_server import RedisServer, running_redis
from tests.support import Gateway, text_of, wait_until

PROPAGATION_DEADLINE = 10.0  # pub/sub normally; the 5 s refresh at worst


def knows(gw: Gateway, key: str) -> bool:
    return gw.client.get("/balance", headers={"X-API-Key": key}).status_code == 200


def refuses(gw: Gateway, key: str) -> bool:
    return not knows(gw, key)


def has_balance(gw: Gateway, key: str, credits: int) -> bool:
    return gw.balance(key) == credits


def is_suspended(gw: Gateway, key: str) -> bool:
    return bool(gw.client.get("/balance", headers={"X-API-Key": key}).json()["suspended"])


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(scope="module")
def fleet(redis_server: RedisServer) -> Iterator[list[Gateway]]:
    gateways = start_fleet(3, redis_server.url, "--rate-limit", "0")
    yield gateways
    stop_all(gateways)


def test_a_key_created_on_one_instance_is_usable_on_the_others(fleet: list[Gateway]) -> None:
    a, b, c = fleet
    key = a.create_key(10)
    for gw in (b, c):
        seconds = timed(
            partial(knows, gw, key),
            PROPAGATION_DEADLINE,
            "the new key on another instance",
        )
        print(f"key created on A usable on {gw.port} after {seconds * 1000:.1f} ms")
    assert text_of(b.call_tool("echo", {"text": "from b"}, key)) == "from b"
    assert text_of(c.call_tool("echo", {"text": "from c"}, key)) == "from c"
    wait_until(lambda: balances(fleet, key) == [8, 8, 8], PROPAGATION_DEADLINE, "the two charges everywhere")


def test_topup_suspend_and_revoke_reach_every_instance(fleet: list[Gateway]) -> None:
    a, b, c = fleet
    key = a.create_key(5)
    wait_until(
        lambda: all(knows(gw, key) for gw in fleet),
        PROPAGATION_DEADLINE,
        "the key everywhere",
    )

    resp = a.client.post("/topup", json={"key": key, "credits": 100}, headers=a.admin())
    assert resp.status_code == 200, resp.text
    for gw in (b, c):
        seconds = timed(partial(has_balance, gw, key, 105), PROPAGATION_DEADLINE, "the topup on another instance")
        print(f"topup on A seen on {gw.port} after {seconds * 1000:.1f} ms")

    resp = b.client.post("/keys/suspend", json={"key": key, "reason": "fleet test"}, headers=b.admin())
    assert resp.status_code == 200, resp.text
    for gw in (a, c):
        seconds = timed(
            partial(is_suspended, gw, key),
            PROPAGATION_DEADLINE,
            "the suspension on another instance",
        )
        print(f"suspend on B seen on {gw.port} after {seconds * 1000:.1f} ms")
        reply = gw.call_tool("echo", {"text": "x"}, key)
        assert reply["error"]["data"]["reason"] == "key_suspended", reply

    resp = b.client.post("/keys/resume", json={"key": key}, headers=b.admin())
    assert resp.status_code == 200, resp.text
    wait_until(
        lambda: not any(is_suspended(gw, key) for gw in fleet),
        PROPAGATION_DEADLINE,
        "the resumption everywhere",
    )
    assert text_of(c.call_tool("echo", {"text": "resumed"}, key)) == "resumed"

    resp = b.client.post("/keys/revoke", json={"key": key}, headers=b.admin())
    assert resp.status_code == 200, resp.text
    for gw in (a, c):
        seconds = timed(
            partial(refuses, gw, key),
            PROPAGATION_DEADLINE,
            "the revocation on another instance",
        )
        print(f"revoke on B seen on {gw.port} after {seconds * 1000:.1f} ms")
        reply = gw.call_tool("echo", {"text": "x"}, key)
        assert reply["error"]["data"]["reason"] == "key_revoked", reply


@pytest.mark.parametrize("credits", [5, 20])
def test_instances_racing_for_the_last_credits_never_overspend(fleet: list[Gateway], credits: int) -> None:
    a = fleet[0]
    key = a.create_key(credits)
    wait_until(lambda: balances(fleet, key) == [credits] * 3, PROPAGATION_DEADLINE, "the key everywhere")

    answers = paid_calls(fleet, key, per_instance=credits)  # 3 * credits calls at once, 1 credit each
    seen = total(answers)
    print(f"race for {credits} credits with {3 * credits} calls: per instance {[(x.ok, x.refused) for x in answers]}")
    assert seen.other == [] and seen.transport == 0, seen
    assert set(seen.refused) <= {"insufficient_credits"}, seen.refused
    assert seen.ok + sum(seen.refused.values()) == 3 * credits
    assert 0 < seen.ok <= credits

    expected = credits - seen.ok
    wait_until(lambda: balances(fleet, key) == [expected] * 3, PROPAGATION_DEADLINE, "one balance on every instance")
    history = credit_history(a, key)
    assert history["totalEntries"] == 1 + seen.ok  # the opening balance and one deduction per answered call
    assert sum(e["amount"] for e in history["entries"]) == expected == history["currentBalance"]


def test_a_session_opened_on_one_instance_is_unknown_on_another(fleet: list[Gateway]) -> None:
    """Sessions live in the process that opened them: a load balancer must keep a session on its instance
    (sticky on Mcp-Session-Id), or clients must open a new one when they are answered 404."""
    a, b, _ = fleet
    key = a.create_key(10)
    wait_until(
        partial(knows, b, key),
        PROPAGATION_DEADLINE,
        "the key on B",
    )
    init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "fleet", "version": "1"}}
    opened = a.rpc("initialize", init, key=key)
    assert opened.status_code == 200, opened.text
    session = opened.headers.get("mcp-session-id")
    assert session, dict(opened.headers)
    headers = {"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-06-18"}

    same = a.rpc("tools/call", {"name": "echo", "arguments": {"text": "on a"}}, key=key, headers=headers)
    assert text_of(same.json()) == "on a"
    other = b.rpc("tools/call", {"name": "echo", "arguments": {"text": "on b"}}, key=key, headers=headers)
    assert other.status_code == 404, other.text
    assert other.json()["error"]["message"] == "Session not found"
    wait_until(lambda: balances(fleet, key) == [9, 9, 9], PROPAGATION_DEADLINE, "only the call on A charged")


@pytest.fixture(scope="module")
def limited_fleet(redis_server: RedisServer) -> Iterator[list[Gateway]]:
    gateways = start_fleet(3, redis_server.url, "--redis-prefix", "limited", "--rate-limit", "12")
    yield gateways
    stop_all(gateways)


def test_a_shared_rate_limit_lets_exactly_its_calls_through_across_instances(limited_fleet: list[Gateway]) -> None:
    fleet = limited_fleet
    key = fleet[0].create_key(100)
    wait_until(lambda: balances(fleet, key) == [100] * 3, PROPAGATION_DEADLINE, "the key everywhere")

    answers = paid_calls(fleet, key, per_instance=8)  # 24 calls at once against 12 per minute
    seen = total(answers)
    print(f"rate limit 12/min, 24 calls over 3 instances: per instance {[(x.ok, x.refused) for x in answers]}")
    assert seen.other == [] and seen.transport == 0, seen
    assert seen.ok == 12
    assert seen.refused == {"rate_limited": 12}
    for gw in fleet:  # the window is full for the whole fleet, whichever instance is asked
        reply = gw.call_tool("echo", {"text": "one more"}, key)
        assert reply["error"]["data"]["reason"] == "rate_limited", reply
    wait_until(lambda: balances(fleet, key) == [88] * 3, PROPAGATION_DEADLINE, "12 charges everywhere")
