"""A fleet of three gateways on one redis-server when things break: an instance killed mid-burst, Redis
crashing (AOF, appendfsync always) and coming back, Redis gone for a while; and a password-protected Redis.

The money rule throughout: every answered call is charged once, and no call is charged that was not
answered (a killed instance's calls in flight are the only ones that may be charged unanswered).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import httpx
import pytest

from tests.redis_fleet import ADMIN_KEY, balances, credit_history, start_fleet, stop_all, timed, tool_call
from tests.redis_server import RedisServer, running_redis
from tests.support import ECHO_COMMAND, Gateway, start_gateway, text_of, wait_until

DEADLINE = 20.0  # reconnecting backs off up to 1 s; the refresh runs every 5 s


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis(appendonly=True, appendfsync="always") as server:
        yield server


@pytest.fixture(scope="module")
def fleet(redis_server: RedisServer) -> Iterator[list[Gateway]]:
    gateways = start_fleet(3, redis_server.url, "--rate-limit", "0")
    yield gateways
    stop_all(gateways)


def charged_calls(gw: Gateway, key: str) -> int:
    """Deductions in the ledger of a key that only had its opening balance and 1-credit calls (the
    report shows 100 entries at most, and counts them all)."""
    history = credit_history(gw, key)
    assert {e["type"] for e in history["entries"]} <= {"initial", "deduction"}, history["entries"]
    return int(history["totalEntries"]) - 1


def paid_call_works(gw: Gateway, key: str) -> bool:
    reply = gw.call_tool("echo", {"text": "back?"}, key)
    return "result" in reply


def refused_quickly(gw: Gateway, key: str) -> float:
    """A paid call is answered with a JSON-RPC error (not an HTTP 5xx, not a hang); returns how long it took."""
    started = time.monotonic()
    resp = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}, key=key)
    took = time.monotonic() - started
    assert took < 5.0
    assert resp.status_code < 500, resp.text
    assert "error" in resp.json() and "result" not in resp.json(), resp.text
    return took


def redis_down(gw: Gateway) -> bool:
    return gw.client.get("/health").json()["redis"]["connected"] is False


def is_ready(gw: Gateway) -> bool:
    return gw.client.get("/ready").status_code == 200


@dataclass
class Caller:
    """One client calling one gateway in a loop until told to stop (or the gateway is gone)."""

    gw: Gateway
    key: str
    ok: int = 0
    lost: int = 0  # sent, and the connection dropped before an answer: possibly charged
    refused: list[str] = field(default_factory=list)
    keep_going: bool = False  # after a refusal (Redis down), call again
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.gw.url, timeout=10.0) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                try:
                    resp = client.post("/mcp", json=tool_call(i), headers={"X-API-Key": self.key})
                except httpx.ConnectError:
                    return  # the gateway is gone; this request never reached it
                except httpx.TransportError:
                    self.lost += 1
                    return
                body = resp.json()
                if "result" in body:
                    self.ok += 1
                else:
                    self.refused.append(str(body))
                    if not self.keep_going:
                        return


def test_an_instance_killed_mid_burst_leaves_every_answered_call_charged_once(
    fleet: list[Gateway], redis_server: RedisServer
) -> None:
    a, b, c = fleet
    initial = 10_000
    key = a.create_key(initial)
    wait_until(lambda: balances(fleet, key) == [initial] * 3, DEADLINE, "the key everywhere")
    callers = [Caller(gw, key) for gw in fleet for _ in range(2)]
    threads = [threading.Thread(target=x.run) for x in callers]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: all(x.ok >= 20 for x in callers), DEADLINE, "calls answered on every instance")
        c.stop(signal.SIGKILL)
        survivors_before = [x.ok for x in callers[:4]]
        wait_until(
            lambda: all(x.ok >= n + 20 for x, n in zip(callers[:4], survivors_before, strict=True)),
            DEADLINE,
            "calls answered on the survivors after the kill",
        )
    finally:
        for x in callers:
            x.stop.set()
        for t in threads:
            t.join(30)
    answered = sum(x.ok for x in callers)
    in_flight = sum(x.lost for x in callers[4:])
    print(f"kill -9 mid-burst: {answered} answered ({[x.ok for x in callers]}), {in_flight} lost on the killed one")
    assert all(x.refused == [] for x in callers), [x.refused for x in callers]
    assert sum(x.lost for x in callers[:4]) == 0

    wait_until(lambda: a.balance(key) == b.balance(key), DEADLINE, "one balance on the survivors")
    spent = initial - a.balance(key)
    print(f"  charged {spent}: {spent - answered} of the calls lost in flight were charged")
    assert answered <= spent <= answered + in_flight
    assert charged_calls(a, key) == spent  # one deduction per charge: nothing charged twice

    replacement = start_fleet(1, redis_server.url, "--rate-limit", "0")[0]
    fleet[2] = replacement  # the module's fleet keeps three instances
    assert replacement.balance(key) == initial - spent  # a new instance starts from what Redis holds


def test_redis_crashing_with_aof_loses_nothing_and_the_fleet_reconnects(
    fleet: list[Gateway], redis_server: RedisServer
) -> None:
    a, b, c = fleet
    key = a.create_key(50)
    wait_until(lambda: balances(fleet, key) == [50] * 3, DEADLINE, "the key everywhere")
    for gw in (a, b, c, a, b):
        assert text_of(gw.call_tool("echo", {"text": "before"}, key)) == "before"
    assert b.client.post("/topup", json={"key": key, "credits": 10}, headers=b.admin()).status_code == 200
    wait_until(lambda: balances(fleet, key) == [55] * 3, DEADLINE, "5 charges and a topup everywhere")
    entries_before = credit_history(a, key)["totalEntries"]

    redis_server.restart(crash=True)  # SIGKILL, then the same port and directory: the AOF is replayed
    with redis_server.client() as direct:
        assert direct.exists("{paygate}:keys")

    started = time.monotonic()
    for gw in fleet:  # each instance serves paid calls again by itself (refused calls are not charged)
        wait_until(partial(paid_call_works, gw, key), DEADLINE, f"paid calls on {gw.port} again")
    print(f"redis crash + AOF restart: paid calls on every instance after {time.monotonic() - started:.2f} s")
    wait_until(lambda: balances(fleet, key) == [52] * 3, DEADLINE, "the balance everywhere after the restart")
    history = credit_history(c, key)
    types = [e["type"] for e in reversed(history["entries"])]
    assert types[:7] == ["initial", *["deduction"] * 5, "topup"]  # the ledger from before the crash
    assert history["totalEntries"] >= entries_before + 3
    assert sum(e["amount"] for e in history["entries"]) == 52
    for gw in fleet:
        assert gw.client.get("/health").json()["redis"] == {"connected": True, "pubsub": True}


def test_redis_crashing_mid_burst_charges_exactly_the_answered_calls(
    fleet: list[Gateway], redis_server: RedisServer
) -> None:
    """Charges in flight when Redis dies are either applied and then refunded (their calls were never
    forwarded) or never applied: either way only answered calls stay charged."""
    initial = 10_000
    key = fleet[0].create_key(initial)
    wait_until(lambda: balances(fleet, key) == [initial] * 3, DEADLINE, "the key everywhere")
    callers = [Caller(gw, key, keep_going=True) for gw in fleet for _ in range(2)]
    threads = [threading.Thread(target=x.run) for x in callers]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: all(x.ok >= 20 for x in callers), DEADLINE, "calls answered on every instance")
        redis_server.restart(crash=True)
        before = [x.ok for x in callers]
        wait_until(
            lambda: all(x.ok >= n + 20 for x, n in zip(callers, before, strict=True)),
            DEADLINE,
            "calls answered on every instance after the restart",
        )
    finally:
        for x in callers:
            x.stop.set()
        for t in threads:
            t.join(30)
    answered = sum(x.ok for x in callers)
    refused = sum(len(x.refused) for x in callers)
    print(f"redis SIGKILL mid-burst: {answered} answered, {refused} refused while it was down")
    settled = [line for gw in fleet for line in gw.stderr().splitlines() if "(its reply had been lost)" in line]
    print(f"  batches in doubt, settled after the restart: {len(settled)}", *settled, sep="\n    ")
    assert sum(x.lost for x in callers) == 0
    expected = [initial - answered] * 3
    try:
        wait_until(lambda: balances(fleet, key) == expected, DEADLINE, f"only answered calls charged: {expected}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the instances show {balances(fleet, key)}") from None
    history = credit_history(fleet[0], key)
    assert history["currentBalance"] == initial - answered


def test_with_redis_gone_paid_calls_are_refused_and_free_methods_keep_working(
    fleet: list[Gateway], redis_server: RedisServer
) -> None:
    key = fleet[0].create_key(20)
    wait_until(lambda: balances(fleet, key) == [20] * 3, DEADLINE, "the key everywhere")

    redis_server.stop()
    try:
        # at once, before any instance has noticed: the charge cannot be applied, so the call is refused
        refusals = [refused_quickly(gw, key) for gw in fleet]
        print(f"redis gone: paid calls refused in {[f'{t * 1000:.0f} ms' for t in refusals]}")
        for gw in fleet:
            seconds = timed(partial(redis_down, gw), DEADLINE, f"{gw.port} noticing redis is gone")
            print(f"  /health of {gw.port} says redis is gone after {seconds:.2f} s")
        for gw in fleet:
            ready = gw.client.get("/ready")
            assert ready.status_code == 503 and ready.json()["checks"]["redis"] is False, ready.text
            refused_quickly(gw, key)
            listed = gw.rpc("tools/list", key=key)
            assert any(t["name"] == "echo" for t in listed.json()["result"]["tools"])
            init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
            assert "result" in gw.rpc("initialize", init, key=key).json()
    finally:
        redis_server.start()

    answered = 0
    for gw in fleet:
        wait_until(partial(paid_call_works, gw, key), DEADLINE, f"paid calls on {gw.port} again")
        answered += 1
    for gw in fleet:
        wait_until(partial(is_ready, gw), DEADLINE, f"{gw.port} ready again")
    wait_until(lambda: balances(fleet, key) == [20 - answered] * 3, DEADLINE, "only answered calls charged")
    history = credit_history(fleet[1], key)
    assert sum(e["amount"] for e in history["entries"]) == 20 - answered


PASSWORD = "s3cret-fleet-pw-7d1e"


def test_a_password_protected_redis_with_a_db_index() -> None:
    with running_redis(password=PASSWORD) as server:
        url = server.url_of(2)
        gw = start_gateway("--server", ECHO_COMMAND, "--redis-url", url, admin_key=ADMIN_KEY)
        try:
            key = gw.create_key(5)
            assert text_of(gw.call_tool("echo", {"text": "authed"}, key)) == "authed"
            shown = gw.client.get("/config", headers=gw.admin()).json()["redisUrl"]
            assert shown == f"redis://***@127.0.0.1:{server.port}/2", shown
            with server.client(2) as db2, server.client(0) as db0:
                assert db2.scard("{paygate}:keys") == 1
                assert db0.dbsize() == 0
        finally:
            gw.stop()
        assert PASSWORD not in gw.stderr()


def test_with_redis_gone_the_admin_api_answers_503_not_500(fleet: list[Gateway], redis_server: RedisServer) -> None:
    gw = fleet[0]
    key = gw.create_key(5)
    redis_server.stop()
    try:
        wait_until(partial(redis_down, gw), DEADLINE, "the instance noticing redis is gone")
        with httpx.Client(base_url=gw.url, timeout=10.0) as client:  # one connection for both requests
            topup = client.post("/topup", json={"key": key, "credits": 5}, headers=gw.admin())
            assert topup.status_code == 503, topup.text
            assert "Retry-After" in topup.headers
            history = client.get("/keys/credit-history", params={"key": key}, headers=gw.admin())
            assert history.status_code == 503, history.text  # and the connection was kept
    finally:
        redis_server.start()
    wait_until(partial(is_ready, gw), DEADLINE, "ready again")
