"""The response cache (docs/traffic.md#response-cache): a hit is not run and not charged, is served only to a
caller the gate would let make the call, never touches the rate window; only successful results are kept,
per key unless the tool is shared; TTLs, the LRU bound and the admin endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paygate.traffic.cache import ResponseCache
from tests.echo_backend import EchoBackend
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, wait_until, write_config

CONFIG = {
    "cacheTtlSeconds": 60,
    "toolPricing": {
        "add": {"cacheShared": True},
        "echo": {"cacheTtlSeconds": 0},  # never cached
        "slow": {"cacheTtlSeconds": 30},
    },
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = write_config(tmp_path_factory.mktemp("cache"), CONFIG)
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gateway:
        yield gateway


def cache_of(gw: InProcessGateway) -> ResponseCache:
    assert gw.rt is not None
    stage = gw.rt.dispatcher.traffic.stage("cache")
    assert isinstance(stage, ResponseCache)
    return stage


def runs(gw: InProcessGateway, seconds: float) -> int:
    """How many times the backend really ran `slow` with these seconds."""
    assert gw.rt is not None and isinstance(gw.rt.backend, EchoBackend)
    return gw.rt.backend.started.count(seconds)


def call(
    gw: InProcessGateway, key: str, tool: str, arguments: dict[str, Any], msg_id: Any = 1
) -> tuple[str | None, dict[str, Any]]:
    resp = gw.rpc("tools/call", {"name": tool, "arguments": arguments}, key=key, msg_id=msg_id)
    assert resp.status_code == 200, resp.text
    return resp.headers.get("x-cache"), resp.json()


def view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/cache", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_a_hit_is_not_run_and_not_charged(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    first = call(gw, key, "slow", {"seconds": 0.001}, msg_id="a")
    assert first[0] == "MISS" and first[1]["id"] == "a" and gw.balance(key) == 9
    for msg_id in (2, "b", 3):
        state, reply = call(gw, key, "slow", {"seconds": 0.001}, msg_id=msg_id)
        assert state == "HIT" and reply["id"] == msg_id  # the caller's own id
        assert reply["result"] == first[1]["result"]
    assert runs(gw, 0.001) == 1 and gw.balance(key) == 9
    resp = gw.rpc("tools/call", {"name": "slow", "arguments": {"seconds": 0.001}}, key=key)
    assert resp.headers["x-credits-remaining"] == "9"


def test_arguments_are_compared_canonically(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    assert call(gw, key, "slow", {"seconds": 0.002})[0] == "MISS"
    assert call(gw, key, "slow", {"seconds": 0.0021})[0] == "MISS"  # other arguments: another entry
    assert call(gw, key, "add", {"a": 1, "b": 2})[0] == "MISS"
    assert call(gw, key, "add", {"b": 2, "a": 1})[0] == "HIT"  # the order of keys does not matter
    assert gw.balance(key) == 7


def test_answers_are_per_key_unless_the_tool_is_shared(gw: InProcessGateway) -> None:
    a, b = gw.create_key(10), gw.create_key(10)
    assert call(gw, a, "slow", {"seconds": 0.003})[0] == "MISS"
    assert call(gw, b, "slow", {"seconds": 0.003})[0] == "MISS"  # b never gets a's answer
    assert runs(gw, 0.003) == 2 and gw.balance(a) == gw.balance(b) == 9
    assert call(gw, a, "add", {"a": 40, "b": 2})[0] == "MISS"
    assert call(gw, b, "add", {"a": 40, "b": 2})[0] == "HIT"  # add is cacheShared
    assert gw.balance(a) == 8 and gw.balance(b) == 9


def test_failures_and_uncached_tools_are_never_kept(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    for _ in range(2):
        state, reply = call(gw, key, "fail", {})
        assert state == "MISS" and reply["result"]["isError"] is True
    state, reply = call(gw, key, "add", {"a": "x", "b": 1})  # a tool error (validation)
    assert state == "MISS" and call(gw, key, "add", {"a": "x", "b": 1})[0] == "MISS"
    for _ in range(2):  # toolPricing.echo.cacheTtlSeconds: 0 -> not considered at all
        assert call(gw, key, "echo", {"text": "t"})[0] is None
    assert gw.balance(key) == 4
    big = call(gw, key, "big_output", {"kilobytes": 1100})  # over the 1 MiB an entry may hold
    assert big[0] == "MISS" and call(gw, key, "big_output", {"kilobytes": 1100})[0] == "MISS"


def test_a_refused_call_is_not_considered_and_not_kept(gw: InProcessGateway) -> None:
    key = gw.create_key(0)
    state, reply = call(gw, key, "slow", {"seconds": 0.004})
    assert state == "MISS" and reply["error"]["data"]["reason"] == "insufficient_credits"
    assert gw.client.post("/topup", json={"key": key, "credits": 1}, headers=gw.admin()).status_code == 200
    assert call(gw, key, "slow", {"seconds": 0.004})[0] == "MISS"  # the refusal was not kept
    assert runs(gw, 0.004) == 1 and gw.balance(key) == 0
    state, reply = call(gw, key, "slow", {"seconds": 0.004})  # a hit with no credits left: free, as documented
    assert state == "HIT" and "result" in reply
    state, reply = call(gw, "pg_not_a_key", "slow", {"seconds": 0.004})
    assert state is None and reply["error"]["data"]["reason"] == "invalid_api_key"


@pytest.mark.parametrize("how", ["acl", "suspend", "revoke", "token"])
def test_a_hit_is_never_served_to_a_caller_the_gate_would_refuse(gw: InProcessGateway, how: str) -> None:
    key = gw.create_key(10)
    args = {"seconds": 0.005}
    assert call(gw, key, "slow", args)[0] == "MISS"
    caller = key
    admin = gw.admin()
    if how == "acl":
        resp = gw.client.post("/keys/acl", json={"key": key, "deniedTools": ["slow"]}, headers=admin)
        reason = "tool_not_allowed"
    elif how == "suspend":
        resp = gw.client.post("/keys/suspend", json={"key": key}, headers=admin)
        reason = "key_suspended"
    elif how == "revoke":
        resp = gw.client.post("/keys/revoke", json={"key": key}, headers=admin)
        reason = "key_revoked"
    else:  # a token of the same key narrowed to other tools
        resp = gw.client.post("/tokens", json={"key": key, "allowedTools": ["add"]}, headers=admin)
        caller, reason = resp.json()["token"], "tool_not_allowed"
    assert resp.status_code in (200, 201), resp.text
    state, reply = call(gw, caller, "slow", args)
    assert state == "MISS" and reply["error"]["data"]["reason"] == reason, reply
    assert gw.balance(key) == 9 if how != "revoke" else True


def test_ttls_expire_per_tool(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    cache = cache_of(gw)
    real = cache.clock
    start = real()
    try:
        cache.clock = lambda: start
        assert call(gw, key, "slow", {"seconds": 0.006})[0] == "MISS"  # slow: 30 s
        assert call(gw, key, "add", {"a": 6, "b": 6})[0] in ("MISS", "HIT")  # add: the global 60 s
        cache.clock = lambda: start + 29
        assert call(gw, key, "slow", {"seconds": 0.006})[0] == "HIT"
        cache.clock = lambda: start + 31
        assert call(gw, key, "slow", {"seconds": 0.006})[0] == "MISS"
        assert call(gw, key, "add", {"a": 6, "b": 6})[0] == "HIT"
        cache.clock = lambda: start + 61 + 31
        assert call(gw, key, "add", {"a": 6, "b": 6})[0] == "MISS"
    finally:
        cache.clock = real
    assert runs(gw, 0.006) == 2


def test_the_admin_view_and_clearing(gw: InProcessGateway) -> None:
    key = gw.create_key(20)
    call(gw, key, "slow", {"seconds": 0.007})
    call(gw, key, "slow", {"seconds": 0.007})
    call(gw, key, "add", {"a": 7, "b": 7})
    seen = view(gw)
    assert seen["enabled"] is True and seen["ttlSeconds"] == 60 and seen["maxEntries"] == 10_000
    assert seen["toolTtlSeconds"] == {"echo": 0, "slow": 30} and seen["sharedTools"] == ["add"]
    assert seen["entries"] >= 2 and seen["hits"] >= 1 and 0 < seen["hitRate"] < 1
    assert seen["tools"]["slow"]["entries"] >= 1 and seen["tools"]["slow"]["hits"] >= 1
    resp = gw.client.delete("/admin/cache", params={"tool": "slow"}, headers=gw.admin())
    assert resp.status_code == 200 and resp.json()["cleared"] == seen["tools"]["slow"]["entries"]
    assert "slow" not in {t for t, c in view(gw)["tools"].items() if c["entries"]}
    assert call(gw, key, "slow", {"seconds": 0.007})[0] == "MISS"
    assert call(gw, key, "add", {"a": 7, "b": 7})[0] == "HIT"  # other tools kept
    resp = gw.client.delete("/admin/cache", headers=gw.admin())
    assert resp.status_code == 200 and resp.json()["tool"] is None and view(gw)["entries"] == 0
    events = gw.events("cache.cleared")
    assert [e["data"]["tool"] for e in events[-2:]] == ["slow", None]

    def audited() -> bool:  # the audit log (a deferred subscriber) has them, with the admin as actor
        found = gw.client.get("/audit", params={"types": "cache.cleared"}, headers=gw.admin()).json()["events"]
        return len(found) >= 2 and found[0]["actor"] == events[-1]["actor"]

    wait_until(audited, what="cache.cleared in the audit log")
    metrics = gw.client.get("/metrics").text
    assert "paygate_cache_entries 0.0" in metrics
    assert 'paygate_cache_hits_total{tool="add"}' in metrics and "paygate_cache_misses_total" in metrics


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ttlSeconds": -1},
        {"ttlSeconds": "5"},
        {"maxEntries": 1_000_001},
        {"ttlSeconds": 5, "other": 1},
        [1],
    ],
)
def test_bad_configuration_is_refused_and_changes_nothing(gw: InProcessGateway, body: Any) -> None:
    before = {k: v for k, v in view(gw).items() if k in ("ttlSeconds", "maxEntries", "enabled")}
    resp = gw.client.post("/admin/cache", json=body, headers=gw.admin())
    assert resp.status_code == 400, resp.text
    assert {k: v for k, v in view(gw).items() if k in before} == before
    bad = gw.client.delete("/admin/cache", params={"tool": ""}, headers=gw.admin())
    assert bad.status_code == 400
    assert gw.client.get("/admin/cache").status_code == 401  # admin only


def test_the_bound_and_runtime_settings_persist(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    config = write_config(tmp_path, {"cacheTtlSeconds": 60})
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config)
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-cache-tests") as gw:
        key = gw.create_key(10)
        resp = gw.client.post("/admin/cache", json={"maxEntries": 2}, headers=gw.admin())
        assert resp.status_code == 200 and resp.json()["maxEntries"] == 2
        for n in (1, 2, 3):
            assert call(gw, key, "add", {"a": n, "b": 0})[0] == "MISS"
        assert view(gw)["entries"] == 2
        assert call(gw, key, "add", {"a": 1, "b": 0})[0] == "MISS"  # the least recently used went first
        assert call(gw, key, "add", {"a": 3, "b": 0})[0] == "HIT"
        assert gw.client.post("/admin/cache", json={"ttlSeconds": 0}, headers=gw.admin()).json()["enabled"] is False
        assert call(gw, key, "add", {"a": 3, "b": 0})[0] is None  # off: not considered, and emptied
        events = gw.events("cache.configured")
        assert [e["data"] for e in events] == [
            {"ttlSeconds": 60, "maxEntries": 2},
            {"ttlSeconds": 0, "maxEntries": 2},
        ]
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-cache-tests") as gw:
        seen = view(gw)  # the admin's settings outlive the restart (over the config file's)
        assert seen["ttlSeconds"] == 0 and seen["maxEntries"] == 2 and seen["enabled"] is False


def test_off_by_default_and_a_hit_never_touches_the_rate_window(tmp_path: Path) -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "2") as gw:
        assert view(gw)["enabled"] is False and gw.rt is not None and not gw.rt.dispatcher.traffic.calls_on
        key = gw.create_key(10)
        assert call(gw, key, "add", {"a": 1, "b": 1})[0] is None
        assert gw.client.post("/admin/cache", json={"ttlSeconds": 60}, headers=gw.admin()).status_code == 200
        assert call(gw, key, "add", {"a": 1, "b": 1})[0] == "MISS"  # the 2nd call in the minute
        for _ in range(5):
            assert call(gw, key, "add", {"a": 1, "b": 1})[0] == "HIT"
        state, reply = call(gw, key, "add", {"a": 2, "b": 2})
        assert state == "MISS" and reply["error"]["data"]["reason"] == "rate_limited"
        assert gw.balance(key) == 8


def test_the_config_keys_are_documented_as_acted_on() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    row = next(line for line in text.splitlines() if "`toolPricing.{tool}.cacheTtlSeconds`" in line)
    assert "not acted on" not in row and "cacheShared" in text
