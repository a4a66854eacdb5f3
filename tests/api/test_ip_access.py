"""Global IP access rules (policy/ip_access.py): GET/POST/DELETE /admin/ip-access and /mcp refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

ARGS = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--trusted-proxies", "127.0.0.1")


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway(*ARGS) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def reset(gw: InProcessGateway) -> Iterator[None]:
    yield
    off = {"enabled": False, "allow": [], "deny": [], "autoBlock": {"enabled": False}}
    assert configure(gw, off).status_code == 200
    gw.client.delete("/admin/ip-access", params={"all": "true"}, headers=gw.admin())


def configure(gw: InProcessGateway, body: dict[str, Any]) -> httpx.Response:
    return gw.client.post("/admin/ip-access", json=body, headers=gw.admin())


def view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/ip-access", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def call_from(gw: InProcessGateway, ip: str, key: str) -> httpx.Response:
    params = {"name": "add", "arguments": {"a": 1, "b": 2}}
    return gw.rpc("tools/call", params, key=key, headers={"X-Forwarded-For": ip})


def test_a_denied_block_is_refused_before_any_charge_and_others_pass(gw: InProcessGateway) -> None:
    resp = configure(gw, {"enabled": True, "deny": ["10.0.0.0/8", "2001:db8::/32"]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["deny"] == ["10.0.0.0/8", "2001:db8::/32"] and resp.json()["warnings"] == []
    key = gw.create_key(10)
    refused = call_from(gw, "10.1.2.3", key)
    assert refused.status_code == 403
    assert refused.json()["error"]["data"]["reason"] == "ip_blocked"
    assert call_from(gw, "2001:db8::7", key).status_code == 403
    assert gw.balance(key) == 10
    assert call_from(gw, "192.0.2.1", key).json()["result"]["structuredContent"] == {"result": 3}
    assert gw.balance(key) == 9
    assert view(gw)["stats"]["refused"] >= 2
    assert "paygate_ip_access_refused_total" in gw.client.get("/metrics").text


def test_an_allow_list_admits_only_its_addresses_including_ipv4_mapped_ipv6(gw: InProcessGateway) -> None:
    assert configure(gw, {"enabled": True, "allow": ["192.0.2.0/24"]}).status_code == 200
    key = gw.create_key(10)
    assert call_from(gw, "198.51.100.7", key).status_code == 403
    assert "result" in call_from(gw, "::ffff:192.0.2.5", key).json()
    assert "result" in call_from(gw, "192.0.2.200", key).json()
    assert gw.balance(key) == 8


def test_deny_wins_over_allow_and_says_so(gw: InProcessGateway) -> None:
    resp = configure(gw, {"enabled": True, "allow": ["192.0.2.0/24"], "deny": ["192.0.2.66"]})
    assert any("deny wins" in w for w in resp.json()["warnings"])
    key = gw.create_key(10)
    assert call_from(gw, "192.0.2.66", key).status_code == 403
    assert call_from(gw, "192.0.2.67", key).status_code == 200


def test_repeated_bad_keys_block_the_address_until_an_admin_lifts_it(gw: InProcessGateway) -> None:
    auto = {"enabled": True, "threshold": 3, "windowSeconds": 60, "blockSeconds": 600}
    assert configure(gw, {"autoBlock": auto}).status_code == 200
    key = gw.create_key(10)
    for _ in range(3):
        bad = call_from(gw, "203.0.113.9", "pg_not_a_real_key_000000000000")
        assert bad.json()["error"]["data"]["reason"] == "invalid_api_key"
    blocked = call_from(gw, "203.0.113.9", key)  # now even a good key from there is refused
    assert blocked.status_code == 403 and blocked.json()["error"]["data"]["reason"] == "ip_blocked"
    assert call_from(gw, "203.0.113.10", key).status_code == 200
    [entry] = view(gw)["blocked"]
    assert entry["ip"] == "203.0.113.9" and entry["violations"] == 3 and entry["by"] == "auto-block"
    assert gw.events("ip_access.blocked")[-1]["data"]["ip"] == "203.0.113.9"
    lifted = gw.client.delete("/admin/ip-access", params={"ip": "203.0.113.9"}, headers=gw.admin())
    assert lifted.status_code == 200 and lifted.json() == {"unblocked": 1}
    assert call_from(gw, "203.0.113.9", key).status_code == 200
    assert gw.balance(key) == 8


def test_a_missing_key_is_not_a_violation(gw: InProcessGateway) -> None:
    assert configure(gw, {"autoBlock": {"enabled": True, "threshold": 2}}).status_code == 200
    for _ in range(3):
        assert call_from(gw, "203.0.113.20", "").json()["error"]["data"]["reason"] == "missing_api_key"
    assert view(gw)["blocked"] == []


def test_an_admin_blocks_an_address_by_hand(gw: InProcessGateway) -> None:
    resp = configure(gw, {"block": {"ip": "198.51.100.99", "seconds": 120}})
    assert resp.status_code == 200, resp.text
    [entry] = resp.json()["blocked"]
    assert entry["ip"] == "198.51.100.99" and entry["by"] == "admin"
    key = gw.create_key(3)
    assert call_from(gw, "198.51.100.99", key).status_code == 403
    [event] = gw.events("ip_access.blocked")[-1:]
    assert event["data"] == {"ip": "198.51.100.99", "seconds": 120, "violations": 0}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"deny": ["10.0.0.0/33"]},
        {"allow": ["not-an-ip"]},
        {"autoBlock": {"threshold": 0}},
        {"block": {"ip": "10.0.0.0/8"}},
        {"enabled": "yes"},
        {"unknown": True},
    ],
)
def test_bad_requests_are_400_and_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = view(gw)
    resp = configure(gw, body)
    assert resp.status_code in (400, 422), resp.text
    after = view(gw)
    assert {k: after[k] for k in ("enabled", "allow", "deny", "autoBlock", "blocked")} == {
        k: before[k] for k in ("enabled", "allow", "deny", "autoBlock", "blocked")
    }


def test_delete_needs_one_target(gw: InProcessGateway) -> None:
    assert gw.client.delete("/admin/ip-access", headers=gw.admin()).status_code == 400
    both = gw.client.delete("/admin/ip-access", params={"ip": "1.2.3.4", "all": "true"}, headers=gw.admin())
    assert both.status_code == 400
    assert gw.client.delete("/admin/ip-access", params={"ip": "1.2.3.4"}, headers=gw.admin()).status_code == 404


def test_viewers_read_and_only_admins_change(gw: InProcessGateway) -> None:
    made = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "ip viewer", "role": "viewer"})
    viewer = {"X-Admin-Key": made.json()["key"]}
    assert gw.client.get("/admin/ip-access", headers=viewer).status_code == 200
    assert gw.client.post("/admin/ip-access", headers=viewer, json={"enabled": True}).status_code == 403
    assert gw.client.get("/admin/ip-access").status_code == 401
    assert view(gw)["enabled"] is False


def test_the_rules_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with running_inprocess_gateway(*ARGS, state_file=state, admin_key="admin-key-for-ip-access") as first:
        assert configure(first, {"enabled": True, "deny": ["10.0.0.0/8"]}).status_code == 200
        assert configure(first, {"block": {"ip": "192.0.2.9"}}).status_code == 200
    with running_inprocess_gateway(*ARGS, state_file=state, admin_key="admin-key-for-ip-access") as second:
        shown = view(second)
        assert shown["deny"] == ["10.0.0.0/8"] and [b["ip"] for b in shown["blocked"]] == ["192.0.2.9"]
        key = second.create_key(5)
        assert call_from(second, "10.9.9.9", key).status_code == 403
        assert call_from(second, "192.0.2.9", key).status_code == 403
        assert call_from(second, "192.0.2.10", key).status_code == 200
