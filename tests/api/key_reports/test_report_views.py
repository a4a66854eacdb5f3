"""Each per-key report against a real gateway: usage, rate-limit and quota status, credit history, spending
velocity, health, dashboard, activity and tool availability."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api.key_reports.support import ADD_LIMIT, ADD_PRICE, GLOBAL_LIMIT, echo, get, post, report
from tests.inprocess import InProcessGateway
from tests.support import wait_until

# --- GET /keys/usage ------------------------------------------------------------------------------


def test_usage_breaks_calls_down_by_tool_reason_and_hour(gw: InProcessGateway) -> None:
    raw = gw.create_key(3, name="usage", deniedTools=["announce"])
    echo(gw, raw, 2)
    assert "error" in gw.call_tool("announce", {"text": "x"}, raw)  # denied by the ACL
    assert "error" in gw.call_tool("add", {"a": 1, "b": 2}, raw)  # costs 2, has 1 left
    u = report(gw, "/keys/usage", raw)
    assert (u["totalCalls"], u["totalAllowed"], u["totalDenied"], u["totalCreditsSpent"]) == (4, 2, 2, 2)
    assert u["perTool"] == {  # calls: every attempt; denied: the subset refused (as the reference counts)
        "echo": {"calls": 2, "credits": 2, "denied": 0},
        "announce": {"calls": 1, "credits": 0, "denied": 1},
        "add": {"calls": 1, "credits": 0, "denied": 1},
    }
    assert u["denyReasons"] == {"tool_not_allowed": 1, "insufficient_credits": 1}
    assert sum(b["calls"] for b in u["timeSeries"]) == 4 and sum(b["denied"] for b in u["timeSeries"]) == 2
    assert [e["tool"] for e in u["recentEvents"]] == ["add", "announce", "echo", "echo"]  # newest first
    assert u["credits"] == 1 and u["status"] == "active"


def test_usage_since_the_future_is_empty_and_a_bad_since_is_400(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    echo(gw, raw)
    assert report(gw, "/keys/usage", raw, since="2999-01-01T00:00:00Z")["totalCalls"] == 0
    assert report(gw, "/keys/usage", raw, since="2000-01-01T00:00:00")["totalCalls"] == 1
    assert get(gw, "/keys/usage", key=raw, since="yesterday").status_code == 400


# --- GET /keys/rate-limit-status ------------------------------------------------------------------


def test_rate_limit_status_shows_global_and_per_tool_windows(gw: InProcessGateway) -> None:
    raw = gw.create_key(100)
    echo(gw, raw, 2)
    assert "result" in gw.call_tool("add", {"a": 1, "b": 2}, raw)
    status = report(gw, "/keys/rate-limit-status", raw)
    g = status["global"]
    assert (g["limit"], g["used"], g["remaining"], g["windowMs"]) == (GLOBAL_LIMIT, 3, GLOBAL_LIMIT - 3, 60_000)
    assert 0 < g["resetInMs"] <= 60_000
    assert status["perTool"] == {
        "add": {**status["perTool"]["add"], "limit": ADD_LIMIT, "used": 1, "remaining": ADD_LIMIT - 1}
    }


def test_looking_at_the_rate_window_never_uses_a_slot(gw: InProcessGateway) -> None:
    raw = gw.create_key(100)
    for _ in range(GLOBAL_LIMIT + 5):
        assert report(gw, "/keys/rate-limit-status", raw)["global"]["used"] == 0
        assert get(gw, "/tools/available", key=raw).status_code == 200
    for _ in range(ADD_LIMIT):
        assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, raw)
    assert report(gw, "/keys/rate-limit-status", raw)["perTool"]["add"]["remaining"] == 0


# --- GET /keys/quota-status -----------------------------------------------------------------------


def test_quota_status_counts_calls_and_credits_against_the_keys_limits(gw: InProcessGateway) -> None:
    raw = gw.create_key(100, quota={"dailyCallLimit": 5, "monthlyCreditLimit": 50})
    echo(gw, raw, 2)
    q = report(gw, "/keys/quota-status", raw)
    assert q["quotaSource"] == "per-key"
    assert {
        k: q["daily"][k] for k in ("callsUsed", "callsLimit", "callsRemaining", "creditsLimit", "creditsRemaining")
    } == {"callsUsed": 2, "callsLimit": 5, "callsRemaining": 3, "creditsLimit": 0, "creditsRemaining": None}
    assert (q["monthly"]["creditsUsed"], q["monthly"]["creditsRemaining"]) == (2, 48)
    assert len(q["daily"]["resetDay"]) == 10 and len(q["monthly"]["resetMonth"]) == 7


def test_a_key_without_quota_reports_source_none_and_unlimited(gw: InProcessGateway) -> None:
    q = report(gw, "/keys/quota-status", gw.create_key(5))
    assert q["quotaSource"] == "none"
    assert q["daily"]["callsRemaining"] is None and q["monthly"]["creditsRemaining"] is None


# --- GET /keys/credit-history ---------------------------------------------------------------------


def test_credit_history_lists_movements_newest_first_with_balances(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    post(gw, "/topup", {"key": raw, "credits": 5})
    echo(gw, raw)
    h = report(gw, "/keys/credit-history", raw)
    assert h["currentBalance"] == 14 and h["totalEntries"] == 3
    assert [(e["type"], e["amount"], e["balanceBefore"], e["balanceAfter"]) for e in h["entries"]] == [
        ("deduction", -1, 15, 14),
        ("topup", 5, 10, 15),
        ("initial", 10, 0, 10),
    ]
    topups = report(gw, "/keys/credit-history", raw, type="topup")
    assert [e["type"] for e in topups["entries"]] == ["topup"] and topups["totalEntries"] == 1
    newest = report(gw, "/keys/credit-history", raw, limit=1)
    assert len(newest["entries"]) == 1 and newest["totalEntries"] == 3


def test_auto_topups_have_their_own_type_in_the_credit_history(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    post(gw, "/keys/auto-topup", {"key": raw, "threshold": 2, "amount": 10})
    echo(gw, raw, 2)
    wait_until(
        lambda: report(gw, "/keys/credit-history", raw, type="auto_topup")["totalEntries"] == 1, what="the auto-topup"
    )
    entry = report(gw, "/keys/credit-history", raw, type="auto_topup")["entries"][0]
    assert (entry["amount"], entry["balanceAfter"] - entry["balanceBefore"]) == (10, 10)
    assert report(gw, "/keys/dashboard", raw)["balance"]["totalAllocated"] == 13


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"type": "Top Up!"}, {"since": "soon"}])
def test_bad_credit_history_parameters_are_400(gw: InProcessGateway, params: dict[str, Any]) -> None:
    assert get(gw, "/keys/credit-history", key=gw.create_key(1), **params).status_code == 400


# --- GET /keys/spending-velocity ------------------------------------------------------------------


def test_spending_velocity_divides_spend_by_the_window_and_forecasts_depletion(gw: InProcessGateway) -> None:
    raw = gw.create_key(100)
    echo(gw, raw, 3)
    assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, raw)
    v = report(gw, "/keys/spending-velocity", raw, window=1)
    assert v["currentBalance"] == 95
    assert v["velocity"] == {
        **v["velocity"],
        "creditsPerHour": 5.0,
        "creditsPerDay": 120.0,
        "callsPerHour": 4.0,
        "windowHours": 1,
        "dataPoints": 4,
        "estimatedHoursRemaining": 19.0,
    }
    assert v["velocity"]["estimatedDepletionDate"].endswith("Z")
    assert v["topTools"] == [{"tool": "echo", "calls": 3, "credits": 3}, {"tool": "add", "calls": 1, "credits": 2}]
    assert report(gw, "/keys/spending-velocity", raw)["velocity"]["windowHours"] == 24


def test_without_spending_there_is_no_depletion_forecast(gw: InProcessGateway) -> None:
    v = report(gw, "/keys/spending-velocity", gw.create_key(5))["velocity"]
    assert v["estimatedDepletionDate"] is None and v["estimatedHoursRemaining"] is None and v["dataPoints"] == 0


@pytest.mark.parametrize("window", [0, 721, "1.5", "day"])
def test_a_velocity_window_outside_1_to_720_hours_is_400(gw: InProcessGateway, window: Any) -> None:
    assert get(gw, "/keys/spending-velocity", key=gw.create_key(1), window=window).status_code == 400


# --- GET /keys/health -----------------------------------------------------------------------------


def test_a_fresh_funded_key_is_fully_healthy(gw: InProcessGateway) -> None:
    h = report(gw, "/keys/health", gw.create_key(100))
    assert (h["score"], h["status"], h["issues"]) == (100, "healthy", [])
    assert {name: c["weight"] for name, c in h["components"].items()} == {
        "balance": 0.3,
        "quota": 0.25,
        "rateLimit": 0.2,
        "errorRate": 0.25,
    }


def test_health_falls_with_an_empty_balance_and_denials(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    echo(gw, raw)
    assert "error" in gw.call_tool("echo", {"text": "x"}, raw)  # now out of credits
    h = report(gw, "/keys/health", raw)
    c = h["components"]
    assert c["balance"]["score"] == 0 and c["balance"]["risk"] == "critical"
    assert c["errorRate"]["score"] == 50
    assert c["rateLimit"]["score"] == 100 - round(100 * 1 / GLOBAL_LIMIT)  # a denied call gives its slot back
    assert "Zero credits" in h["issues"]
    assert h["score"] == round(0 * 0.3 + 100 * 0.25 + c["rateLimit"]["score"] * 0.2 + 50 * 0.25)


def test_health_flags_suspended_revoked_and_expiring_keys(gw: InProcessGateway) -> None:
    suspended, revoked = gw.create_key(100), gw.create_key(100)
    expiring = gw.create_key(100, expiresIn=3600)
    post(gw, "/keys/suspend", {"key": suspended})
    post(gw, "/keys/revoke", {"key": revoked})
    s = report(gw, "/keys/health", suspended)
    assert s["score"] <= 49 and "Key is suspended" in s["issues"] and s["keyStatus"] == "suspended"
    r = report(gw, "/keys/health", revoked)
    assert (r["score"], r["status"]) == (0, "critical") and "Key is revoked" in r["issues"]
    assert "Key expires within 24 hours" in report(gw, "/keys/health", expiring)["issues"]


# --- GET /keys/dashboard --------------------------------------------------------------------------


def test_the_dashboard_combines_balance_health_limits_usage_and_activity(gw: InProcessGateway) -> None:
    raw = gw.create_key(20, name="dash", spendingLimit=100)
    post(gw, "/topup", {"key": raw, "credits": 30})
    echo(gw, raw, 2)
    d = report(gw, "/keys/dashboard", raw)
    assert d["name"] == "dash" and d["status"] == "active"
    assert d["balance"] == {"credits": 48, "totalSpent": 2, "totalAllocated": 50, "spendingLimit": 100}
    assert d["usage"] == {"totalCalls": 2, "totalAllowed": 2, "totalDenied": 0, "totalCredits": 2}
    assert d["rateLimits"]["global"]["used"] == 2 and d["quotas"]["source"] == "none"
    assert 0 <= d["health"]["score"] <= 100
    assert d["recentActivity"][0]["type"] == "tool.call" and len(d["recentActivity"]) <= 10


# --- GET /keys/activity ---------------------------------------------------------------------------


def test_activity_merges_admin_events_credit_movements_and_calls_newest_first(gw: InProcessGateway) -> None:
    raw = gw.create_key(10, name="act")
    post(gw, "/topup", {"key": raw, "credits": 5})
    echo(gw, raw)
    post(gw, "/keys/suspend", {"key": raw, "reason": "checking"})
    a = report(gw, "/keys/activity", raw)
    kinds = [(e["source"], e["type"]) for e in a["events"]]
    assert kinds[0] == ("audit", "key.suspended")
    for expected in [
        ("usage", "tool.call"),
        ("ledger", "credits.topup"),
        ("ledger", "credits.initial"),
        ("audit", "key.created"),
        ("audit", "key.topup"),
    ]:
        assert expected in kinds
    assert ("ledger", "credits.deduction") not in kinds  # the call shows once, as usage
    stamps = [e["timestamp"] for e in a["events"]]
    assert stamps == sorted(stamps, reverse=True)
    assert a["total"] == len(a["events"]) and a["limit"] == 50
    two = report(gw, "/keys/activity", raw, limit=2)
    assert two["events"] == a["events"][:2] and two["total"] == a["total"]
    assert report(gw, "/keys/activity", raw, since="2999-01-01T00:00:00Z")["total"] == 0


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"since": "then"}])
def test_bad_activity_parameters_are_400(gw: InProcessGateway, params: dict[str, Any]) -> None:
    assert get(gw, "/keys/activity", key=gw.create_key(1), **params).status_code == 400


# --- GET /tools/available -------------------------------------------------------------------------


def test_tools_available_shows_acl_price_affordability_and_tool_windows(gw: InProcessGateway) -> None:
    raw = gw.create_key(1, deniedTools=["fail"])
    t = report(gw, "/tools/available", raw)
    tools = {row["tool"]: row for row in t["tools"]}
    assert {"echo", "add", "fail"} <= set(tools) and t["totalTools"] == len(tools)
    assert t["accessibleTools"] == len(tools) - 1 and t["creditsAvailable"] == 1
    assert tools["fail"] == {**tools["fail"], "accessible": False, "denyReason": "denied_by_acl"}
    assert tools["echo"] == {"tool": "echo", "accessible": True, "creditsPerCall": 1, "canAfford": True}
    assert tools["add"]["creditsPerCall"] == ADD_PRICE and tools["add"]["canAfford"] is False
    assert tools["add"]["rateLimit"]["limit"] == ADD_LIMIT
    assert t["globalRateLimit"]["limit"] == GLOBAL_LIMIT


def test_tools_available_follows_the_groups_acl_and_price(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    group = post(
        gw,
        "/groups",
        {"name": f"g-{uuid.uuid4().hex[:8]}", "deniedTools": ["slow"], "toolPricing": {"echo": {"creditsPerCall": 7}}},
    ).json()
    post(gw, "/groups/assign", {"key": raw, "groupId": group["id"]})
    tools = {row["tool"]: row for row in report(gw, "/tools/available", raw)["tools"]}
    assert tools["slow"]["accessible"] is False
    assert tools["echo"]["creditsPerCall"] == 7


def test_after_rotation_the_new_keys_reports_carry_the_history(gw: InProcessGateway) -> None:
    old = gw.create_key(10, name="rotating")
    echo(gw, old, 2)
    new = post(gw, "/keys/rotate", {"key": old}).json()["newKey"]
    usage = report(gw, "/keys/usage", new)
    assert (usage["totalCalls"], usage["credits"]) == (2, 8)
    types = [e["type"] for e in report(gw, "/keys/activity", new)["events"]]
    assert "key.rotated" in types and "tool.call" in types
    assert report(gw, "/keys/health", old)["keyStatus"] == "revoked"
