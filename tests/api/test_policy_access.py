"""Per-key policy on who may call: /keys/acl, /keys/suspend, /keys/resume, /keys/ip and /keys/geo —
validation, events, and the gate where it enforces."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.policy_support import denial, events_for, geo, post, view
from tests.inprocess import InProcessGateway

# --- ACL --------------------------------------------------------------------------------------------


def test_acl_sets_both_lists_and_the_gate_enforces_them(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    resp = post(gw, "/keys/acl", {"key": raw, "allowedTools": ["echo", "add", "echo"], "deniedTools": ["add"]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["allowedTools"] == ["echo", "add"] and resp.json()["deniedTools"] == ["add"]
    assert "result" in gw.call_tool("echo", {"text": "hi"}, raw)
    assert denial(gw.call_tool("add", {"a": 1, "b": 2}, raw)) == "tool_not_allowed"  # denied wins
    assert denial(gw.call_tool("big_output", {"kilobytes": 1}, raw)) == "tool_not_allowed"  # not allowed
    [event] = events_for(gw, "key.acl_updated", raw)
    assert event["data"]["allowedTools"] == ["echo", "add"] and raw not in str(event)


def test_acl_leaves_a_list_it_was_not_given_unchanged_and_an_empty_list_clears(gw: InProcessGateway) -> None:
    raw = gw.create_key(10, allowedTools=["echo"], deniedTools=["fail"])
    assert post(gw, "/keys/acl", {"key": raw, "deniedTools": ["add"]}).status_code == 200
    assert (view(gw, raw)["allowedTools"], view(gw, raw)["deniedTools"]) == (["echo"], ["add"])
    assert post(gw, "/keys/acl", {"key": raw, "allowedTools": []}).status_code == 200
    assert (view(gw, raw)["allowedTools"], view(gw, raw)["deniedTools"]) == ([], ["add"])
    assert "result" in gw.call_tool("big_output", {"kilobytes": 1}, raw)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"allowedTools": ["echo"]},
        {"key": "K"},
        {"key": "K", "allowedTools": "echo"},
        {"key": "K", "allowedTools": [""]},
        {"key": "K", "allowedTools": [1]},
        {"key": "K", "deniedTools": None},
        {"key": "K", "allowedTools": ["t"] * 1001},
        {"key": "K", "allowedTools": ["x" * 201]},
        {"key": "K", "allowedTools": ["echo"], "extra": 1},
    ],
)
def test_acl_rejects_bad_input_and_changes_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    raw = gw.create_key(10, allowedTools=["echo"])
    if body.get("key") == "K":
        body = {**body, "key": raw}
    resp = post(gw, "/keys/acl", body)
    assert resp.status_code == 400 and resp.json()["error"].startswith("Invalid request")
    assert view(gw, raw)["allowedTools"] == ["echo"] and view(gw, raw)["deniedTools"] == []
    assert events_for(gw, "key.acl_updated", raw) == []


# --- suspension -------------------------------------------------------------------------------------


def test_a_suspended_key_is_denied_at_the_gate_while_admin_operations_still_work(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    resp = post(gw, "/keys/suspend", {"key": raw, "reason": "investigating abuse"})
    assert resp.status_code == 200 and resp.json()["suspended"] is True
    assert denial(gw.call_tool("echo", {"text": "x"}, raw)) == "key_suspended"
    assert post(gw, "/topup", {"key": raw, "credits": 5}).status_code == 200
    assert post(gw, "/keys/acl", {"key": raw, "deniedTools": ["fail"]}).status_code == 200
    resp = post(gw, "/keys/resume", {"key": raw})
    assert resp.status_code == 200 and resp.json()["suspended"] is False
    assert "result" in gw.call_tool("echo", {"text": "x"}, raw)
    [suspended] = events_for(gw, "key.suspended", raw)
    assert suspended["data"]["reason"] == "investigating abuse"
    assert len(events_for(gw, "key.resumed", raw)) == 1


def test_suspending_twice_or_resuming_an_active_key_is_a_conflict(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    assert post(gw, "/keys/resume", {"key": raw}).status_code == 409
    assert post(gw, "/keys/suspend", {"key": raw}).status_code == 200
    assert post(gw, "/keys/suspend", {"key": raw}).status_code == 409
    assert len(events_for(gw, "key.suspended", raw)) == 1 and events_for(gw, "key.resumed", raw) == []


@pytest.mark.parametrize("body", [{"reason": "x" * 501}, {"reason": 5}, {"why": "x"}])
def test_suspend_rejects_bad_input_and_changes_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    raw = gw.create_key(10)
    assert post(gw, "/keys/suspend", {"key": raw, **body}).status_code == 400
    assert view(gw, raw)["suspended"] is False


# --- IP allowlists ----------------------------------------------------------------------------------


def test_ip_allowlist_is_normalised_deduplicated_and_replaced(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    ips = [" 10.0.0.5 ", "::ffff:192.168.1.7", "192.168.1.99/24", "2001:DB8::/32", "10.0.0.5", "::ffff:10.0.0.0/104"]
    resp = post(gw, "/keys/ip", {"key": raw, "ips": ips})
    assert resp.status_code == 200, resp.text
    expected = ["10.0.0.5", "192.168.1.7", "192.168.1.0/24", "2001:db8::/32", "10.0.0.0/8"]
    assert resp.json()["ipAllowlist"] == expected and view(gw, raw)["ipAllowlist"] == expected
    [event] = events_for(gw, "key.ip_updated", raw)
    assert event["data"]["ipAllowlist"] == expected
    assert post(gw, "/keys/ip", {"key": raw, "ips": []}).json()["ipAllowlist"] == []
    assert view(gw, raw)["ipAllowlist"] == []


def test_an_ip_allowlist_that_excludes_the_caller_denies_and_one_that_includes_it_allows(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    assert post(gw, "/keys/ip", {"key": raw, "ips": ["10.0.0.0/8"]}).status_code == 200
    assert denial(gw.call_tool("echo", {"text": "x"}, raw)) == "ip_not_allowed"
    assert post(gw, "/keys/ip", {"key": raw, "ips": ["127.0.0.0/8"]}).status_code == 200
    assert "result" in gw.call_tool("echo", {"text": "x"}, raw)


@pytest.mark.parametrize(
    "ips",
    [
        ["10.0.0.300"],
        ["not-an-ip"],
        [""],
        ["10.0.0.0/33"],
        "10.0.0.1",
        [10],
        ["10.0.0.1", "nope"],
        [f"10.0.{i // 256}.{i % 256}" for i in range(101)],
    ],
)
def test_ip_allowlist_rejects_bad_entries_and_changes_nothing(gw: InProcessGateway, ips: Any) -> None:
    raw = gw.create_key(10, ipAllowlist=["127.0.0.1"])
    resp = post(gw, "/keys/ip", {"key": raw, "ips": ips})
    assert resp.status_code == 400 and resp.json()["error"].startswith("Invalid request")
    assert view(gw, raw)["ipAllowlist"] == ["127.0.0.1"]


# --- countries --------------------------------------------------------------------------------------


def test_geo_lists_are_stored_upper_case_read_back_and_cleared(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    resp = post(gw, "/keys/geo", {"key": raw, "allowedCountries": ["us", "GB", "us"], "deniedCountries": ["ru"]})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["allowedCountries"], resp.json()["deniedCountries"]) == (["US", "GB"], ["RU"])
    assert post(gw, "/keys/geo", {"key": raw, "deniedCountries": []}).status_code == 200
    assert (geo(gw, raw)["allowedCountries"], geo(gw, raw)["deniedCountries"]) == (["US", "GB"], [])
    resp = gw.client.delete("/keys/geo", params={"key": raw}, headers=gw.admin())
    assert resp.status_code == 200 and geo(gw, raw)["allowedCountries"] == []
    events = events_for(gw, "key.geo_updated", raw)
    assert [e["data"]["allowedCountries"] for e in events] == [["US", "GB"], ["US", "GB"], []]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"allowedCountries": ["USA"]},
        {"allowedCountries": ["1A"]},
        {"deniedCountries": [""]},
        {"allowedCountries": "US"},
        {"allowedCountries": ["ÄÖ"]},
        {"allowedCountries": ["US"], "countries": []},
    ],
)
def test_geo_rejects_bad_input_and_changes_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    raw = gw.create_key(10)
    assert post(gw, "/keys/geo", {"key": raw, "allowedCountries": ["FR"]}).status_code == 200
    assert post(gw, "/keys/geo", {"key": raw, **body}).status_code == 400
    assert geo(gw, raw)["allowedCountries"] == ["FR"]


def test_geo_query_without_a_key_is_a_400(gw: InProcessGateway) -> None:
    assert gw.client.get("/keys/geo", headers=gw.admin()).status_code == 400
    assert gw.client.delete("/keys/geo", headers=gw.admin()).status_code == 400
