"""Per-key policy endpoints: /keys/acl, /keys/expiry, /keys/suspend, /keys/resume, /limits, /keys/quota,
/keys/ip, /keys/geo — validation, 404/409, aliases, events, persistence, and the gate where it enforces."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, wait_until


def post(gw: InProcessGateway, path: str, body: dict[str, Any]) -> Any:
    return gw.client.post(path, json=body, headers=gw.admin())


def view(gw: InProcessGateway, raw: str) -> dict[str, Any]:
    """The key as GET /keys shows it."""
    mine = [k for k in gw.client.get("/keys", headers=gw.admin()).json() if k["keyMasked"] == masked(raw)]
    assert len(mine) == 1
    return dict(mine[0])


def geo(gw: InProcessGateway, ref: str) -> dict[str, Any]:
    resp = gw.client.get("/keys/geo", params={"key": ref}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def events_for(gw: InProcessGateway, type_: str, raw: str) -> list[dict[str, Any]]:
    return [e for e in gw.events(type_) if e["data"].get("keyMasked") == masked(raw)]


def denial(reply: dict[str, Any]) -> str | None:
    return reply["error"]["data"]["reason"] if "error" in reply else None


def set_alias(gw: InProcessGateway, raw: str, alias: str) -> None:
    resp = post(gw, "/keys/alias", {"key": raw, "alias": alias})
    assert resp.status_code == 200, resp.text


# One valid request per endpoint (the key is filled in), for the cross-cutting tests.
VALID: dict[str, dict[str, Any]] = {
    "/keys/acl": {"allowedTools": ["echo"]},
    "/keys/expiry": {"expiresIn": 3600},
    "/keys/suspend": {"reason": "checking"},
    "/limits": {"spendingLimit": 10},
    "/keys/quota": {"dailyCallLimit": 5},
    "/keys/ip": {"ips": ["10.0.0.1"]},
    "/keys/geo": {"allowedCountries": ["US"]},
}


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


# --- cross-cutting: unknown keys, aliases, revoked keys -------------------------------------------


@pytest.mark.parametrize("path", [*VALID, "/keys/resume"])
def test_policy_endpoints_answer_404_for_an_unknown_key(gw: InProcessGateway, path: str) -> None:
    resp = post(gw, path, {"key": "pg_" + "0" * 48, **VALID.get(path, {})})
    assert resp.status_code == 404 and resp.json()["error"] == "API key not found"


def test_geo_reads_and_clears_answer_404_for_an_unknown_key(gw: InProcessGateway) -> None:
    for method in ("GET", "DELETE"):
        resp = gw.client.request(method, "/keys/geo", params={"key": "no-such-key"}, headers=gw.admin())
        assert resp.status_code == 404, method


@pytest.mark.parametrize("path", list(VALID))
def test_policy_endpoints_accept_a_key_alias(gw: InProcessGateway, path: str) -> None:
    raw = gw.create_key(10)
    alias = "policy-" + path.strip("/").replace("/", "-")
    set_alias(gw, raw, alias)
    resp = post(gw, path, {"key": alias, **VALID[path]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["keyMasked"] == masked(raw)


def test_suspend_resume_and_geo_reads_accept_an_alias(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    set_alias(gw, raw, "policy-sr")
    assert post(gw, "/keys/suspend", {"key": "policy-sr"}).status_code == 200
    assert post(gw, "/keys/resume", {"key": "policy-sr"}).status_code == 200
    assert geo(gw, "policy-sr")["keyMasked"] == masked(raw)
    resp = gw.client.delete("/keys/geo", params={"key": "policy-sr"}, headers=gw.admin())
    assert resp.status_code == 200 and resp.json()["keyMasked"] == masked(raw)


@pytest.mark.parametrize("path", list(VALID))
def test_policy_endpoints_refuse_a_revoked_key_with_409(gw: InProcessGateway, path: str) -> None:
    raw = gw.create_key(10)
    assert post(gw, "/keys/revoke", {"key": raw}).status_code == 200
    before = view(gw, raw)
    resp = post(gw, path, {"key": raw, **VALID[path]})
    assert resp.status_code == 409, resp.text
    assert view(gw, raw) == before


# --- expiry -----------------------------------------------------------------------------------------


def test_expiry_in_seconds_denies_the_key_once_it_passes_and_removing_it_revives_the_key(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    # 3 s, not 1: the call below must land before expiry even on a loaded machine
    resp = post(gw, "/keys/expiry", {"key": raw, "expiresIn": 3})
    assert resp.status_code == 200 and resp.json()["expiresAt"]
    expires = datetime.fromisoformat(resp.json()["expiresAt"]).timestamp()
    assert "result" in gw.call_tool("echo", {"text": "x"}, raw)
    wait_until(lambda: time.time() > expires + 0.05, what="the expiry time")
    assert denial(gw.call_tool("echo", {"text": "x"}, raw)) == "api_key_expired"
    resp = post(gw, "/keys/expiry", {"key": raw, "expiresAt": None})
    assert resp.status_code == 200 and resp.json()["expiresAt"] is None
    assert "result" in gw.call_tool("echo", {"text": "x"}, raw)
    kinds = [e["data"]["expiresAt"] is None for e in events_for(gw, "key.expiry_updated", raw)]
    assert kinds == [False, True]


def test_expiry_at_a_date_is_stored_as_given(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    when = datetime.fromtimestamp(time.time() + 86400, UTC).replace(microsecond=0)
    resp = post(gw, "/keys/expiry", {"key": raw, "expiresAt": when.isoformat().replace("+00:00", "Z")})
    assert resp.status_code == 200
    assert view(gw, raw)["expiresAt"] == when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"expiresIn": 60, "expiresAt": None},
        {"expiresIn": 0},
        {"expiresIn": -5},
        {"expiresIn": "60"},
        {"expiresIn": None},
        {"expiresIn": 11 * 365 * 86400},
        {"expiresAt": "2000-01-01T00:00:00Z"},
        {"expiresAt": "2999-01-01T00:00:00"},
        {"expiresAt": "tomorrow"},
        {"expiresAt": 123},
    ],
)
def test_expiry_rejects_bad_input_and_changes_nothing(gw: InProcessGateway, extra: dict[str, Any]) -> None:
    raw = gw.create_key(10, expiresIn=3600)
    before = view(gw, raw)["expiresAt"]
    resp = post(gw, "/keys/expiry", {"key": raw, **extra})
    assert resp.status_code == 400, resp.text
    assert view(gw, raw)["expiresAt"] == before


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


# --- spending limits --------------------------------------------------------------------------------


def test_a_spending_limit_caps_what_the_key_can_spend_and_zero_removes_it(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    resp = post(gw, "/limits", {"key": raw, "spendingLimit": 2})
    assert resp.status_code == 200 and resp.json()["remainingBudget"] == 2
    assert "result" in gw.call_tool("echo", {"text": "x"}, raw)
    assert gw.client.get("/balance", headers={"X-API-Key": raw}).json()["remainingBudget"] == 1
    assert "result" in gw.call_tool("echo", {"text": "x"}, raw)
    assert denial(gw.call_tool("echo", {"text": "x"}, raw)) == "spending_limit_exceeded"
    resp = post(gw, "/limits", {"key": raw, "spendingLimit": 0})
    assert resp.status_code == 200 and resp.json()["spendingLimit"] is None
    assert "result" in gw.call_tool("echo", {"text": "x"}, raw)
    limits = [e["data"]["spendingLimit"] for e in events_for(gw, "key.limit_updated", raw)]
    assert limits == [2, None]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"spendingLimit": -1},
        {"spendingLimit": "5"},
        {"spendingLimit": 1.5},
        {"spendingLimit": 10**16},
        {"spendingLimit": None},
    ],
)
def test_limits_rejects_bad_input_and_changes_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    raw = gw.create_key(10, spendingLimit=7)
    assert post(gw, "/limits", {"key": raw, **body}).status_code == 400
    assert view(gw, raw)["spendingLimit"] == 7


# --- quotas -----------------------------------------------------------------------------------------


def test_quota_sets_named_limits_keeps_the_others_and_remove_drops_the_key_quota(gw: InProcessGateway) -> None:
    raw = gw.create_key(10, quota={"dailyCallLimit": 10, "monthlyCallLimit": 200})
    resp = post(gw, "/keys/quota", {"key": raw, "dailyCreditLimit": 50})
    assert resp.status_code == 200
    expected = {"dailyCallLimit": 10, "monthlyCallLimit": 200, "dailyCreditLimit": 50, "monthlyCreditLimit": 0}
    assert resp.json()["quota"] == expected and view(gw, raw)["quota"] == expected
    resp = post(gw, "/keys/quota", {"key": raw, "remove": True})
    assert resp.status_code == 200 and resp.json()["quota"] is None and view(gw, raw)["quota"] is None
    quotas = [e["data"]["quota"] for e in events_for(gw, "key.quota_updated", raw)]
    assert quotas == [expected, None]


def test_a_key_call_quota_is_enforced_at_the_gate(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    assert post(gw, "/keys/quota", {"key": raw, "dailyCallLimit": 1}).status_code == 200
    assert "result" in gw.call_tool("echo", {"text": "x"}, raw)
    assert denial(gw.call_tool("echo", {"text": "x"}, raw)) == "quota_exceeded"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"remove": False},
        {"remove": True, "dailyCallLimit": 3},
        {"dailyCallLimit": -1},
        {"dailyCallLimit": "3"},
        {"dailyCallLimit": None},
        {"weeklyCallLimit": 3},
        {"monthlyCreditLimit": 10**13},
        {"remove": "yes"},
    ],
)
def test_quota_rejects_bad_input_and_changes_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    raw = gw.create_key(10, quota={"dailyCallLimit": 4})
    before = view(gw, raw)["quota"]
    assert post(gw, "/keys/quota", {"key": raw, **body}).status_code == 400
    assert view(gw, raw)["quota"] == before


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


# --- persistence ------------------------------------------------------------------------------------


def test_every_policy_setting_survives_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        raw = gw.create_key(10)
        settings: list[tuple[str, dict[str, Any]]] = [
            ("/keys/acl", {"allowedTools": ["echo"], "deniedTools": ["fail"]}),
            ("/keys/expiry", {"expiresIn": 3600}),
            ("/keys/suspend", {"reason": "r"}),
            ("/limits", {"spendingLimit": 9}),
            ("/keys/quota", {"monthlyCallLimit": 8}),
            ("/keys/ip", {"ips": ["10.1.0.0/16"]}),
            ("/keys/geo", {"allowedCountries": ["de"], "deniedCountries": ["fr"]}),
        ]
        for path, body in settings:
            assert post(gw, path, {"key": raw, **body}).status_code == 200, path
        before = view(gw, raw)
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        after = view(gw, raw)
        assert after == before
        assert after["allowedTools"] == ["echo"] and after["suspended"] is True and after["expiresAt"]
        assert after["spendingLimit"] == 9 and after["quota"]["monthlyCallLimit"] == 8
        assert after["ipAllowlist"] == ["10.1.0.0/16"]
        assert (geo(gw, raw)["allowedCountries"], geo(gw, raw)["deniedCountries"]) == (["DE"], ["FR"])


# --- roles ------------------------------------------------------------------------------------------


def test_a_viewer_admin_key_reads_policy_views_but_cannot_change_policy(gw: InProcessGateway) -> None:
    resp = post(gw, "/admin/keys", {"name": "policy-viewer", "role": "viewer"})
    assert resp.status_code == 201, resp.text
    viewer = {"X-Admin-Key": resp.json()["key"]}
    raw = gw.create_key(10)
    for path in ("/keys/geo?key=" + raw, "/groups", "/teams", "/namespaces", "/status?namespace=default"):
        assert gw.client.get(path, headers=viewer).status_code == 200, path
    assert gw.client.delete("/keys/geo", params={"key": raw}, headers=viewer).status_code == 403
    writes = [(path, {"key": raw, **body}) for path, body in VALID.items()]
    writes += [("/groups", {"name": "viewer-group"}), ("/teams", {"name": "viewer-team"})]
    for path, body in writes:
        assert gw.client.post(path, json=body, headers=viewer).status_code == 403, path
    assert view(gw, raw)["allowedTools"] == [] and view(gw, raw)["suspended"] is False
