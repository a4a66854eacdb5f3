"""Per-key policy on how long and how much: /keys/expiry, /limits and /keys/quota — validation, events,
and the gate where it enforces."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.policy_support import denial, events_for, post, view
from tests.inprocess import InProcessGateway
from tests.support import wait_until

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
