"""Overview reports over HTTP: /analytics, /admin/dashboard, /admin/notifications, /admin/system-health.

The gateway is shared by the module's tests: each test works in a namespace of its own, or asserts deltas."""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import UTC, datetime

import pytest

from paygate.store.rollups import CallFact
from tests.api.analytics.support import calls, get, key_hash, new_key, record, report
from tests.inprocess import InProcessGateway

DAY = 86400


def ns() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


def at(day: float, hour: int, minute: int = 0) -> float:
    return day + hour * 3600 + minute * 60


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def a_past_day(days_ago: int) -> float:
    """Midnight UTC, `days_ago` days back (far enough that no test's live calls land there)."""
    return (time.time() // DAY - days_ago) * DAY


# /analytics ---------------------------------------------------------------------------------------------


def test_analytics_counts_real_calls_in_a_namespace(gw: InProcessGateway) -> None:
    space = ns()
    key = new_key(gw, 100, namespace=space, name=f"alice-{space}")
    calls(gw, key, 3)
    out = report(gw, "/analytics", namespace=space)
    assert out["summary"] == {
        "totalCalls": 3,
        "totalCredits": 3,
        "totalDenied": 0,
        "totalFailed": 0,
        "uniqueKeys": 1,
        "uniqueTools": 1,
        "successRate": 1.0,
    }
    assert out["tools"] == [
        {
            "tool": "echo",
            "calls": 3,
            "allowed": 3,
            "denied": 0,
            "failed": 0,
            "credits": 3,
            "successRate": 1.0,
            "avgCreditsPerCall": 1.0,
        }
    ]
    (consumer,) = out["topConsumers"]
    assert consumer["calls"] == 3 and consumer["credits"] == 3 and consumer["topTool"] == "echo"
    assert consumer["key"].endswith(key[-4:]) and key not in str(out)
    assert consumer["keyName"] == f"alice-{space}"
    assert sum(b["calls"] for b in out["timeSeries"]) == 3
    assert out["granularity"] == "hourly" and out["namespace"] == space


def _history(gw: InProcessGateway, space: str) -> tuple[float, str, str]:
    day = a_past_day(30)
    a, b = new_key(gw, 10, namespace=space), new_key(gw, 10, namespace=space)
    ha, hb = key_hash(a), key_hash(b)
    record(
        gw,
        [
            # the period before: hour 8-9
            CallFact(at(day, 8, 5), ha, "search", space, "", credits=4),
            # the range: hours 10 and 11
            CallFact(at(day, 10, 1), ha, "search", space, "", credits=5),
            CallFact(at(day, 10, 59), hb, "search", space, "", credits=5, failed=True),
            CallFact(at(day, 10, 30), hb, "fetch", space, "", credits=2),
            CallFact(at(day, 11, 0), hb, "fetch", space, "insufficient_credits"),
            # the next day
            CallFact(at(day + DAY, 3), ha, "fetch", space, "", credits=1),
        ],
    )
    return day, a, b


def test_analytics_buckets_trend_and_consumers_over_recorded_history(gw: InProcessGateway) -> None:
    space = ns()
    day, a, b = _history(gw, space)
    out = report(gw, "/analytics", namespace=space, **{"from": iso(at(day, 10)), "to": iso(at(day, 12))})
    assert out["from"] == iso(at(day, 10)).replace("Z", ".000Z") and out["to"] == iso(at(day, 12)).replace("Z", ".000Z")
    assert [(b_["calls"], b_["allowed"], b_["denied"], b_["failed"], b_["credits"]) for b_ in out["timeSeries"]] == [
        (3, 3, 0, 1, 12),
        (1, 0, 1, 0, 0),
    ]
    assert [t["tool"] for t in out["tools"]] == ["fetch", "search"]  # 2 calls each: by name
    search = out["tools"][1]
    assert search["successRate"] == 0.5 and search["avgCreditsPerCall"] == 5.0  # one of two failed
    assert [c["key"][-4:] for c in out["topConsumers"]] == [b[-4:], a[-4:]]  # b spent 7, a 5
    assert out["topConsumers"][0]["denied"] == 1
    assert out["trend"] == {
        "current": {"calls": 4, "credits": 12, "denied": 1},
        "previous": {"calls": 1, "credits": 4, "denied": 0},
        "change": {"calls": 300.0, "credits": 200.0, "denied": None},
    }
    assert out["summary"]["successRate"] == 0.5  # 4 calls: 1 denied, 1 failed
    top1 = report(gw, "/analytics", namespace=space, topN=1, since=iso(at(day, 10)), until=iso(at(day, 11, 30)))
    assert len(top1["topConsumers"]) == 1 and top1["summary"]["totalCalls"] == 4


def test_analytics_daily_buckets(gw: InProcessGateway) -> None:
    space = ns()
    day, _, _ = _history(gw, space)
    out = report(gw, "/analytics", namespace=space, granularity="daily", **{"from": iso(day), "to": iso(day + 2 * DAY)})
    assert [(b["start"][:10], b["calls"], b["credits"]) for b in out["timeSeries"]] == [
        (iso(day)[:10], 5, 16),
        (iso(day + DAY)[:10], 1, 1),
    ]
    assert out["trend"]["previous"]["calls"] == 0 and out["trend"]["change"]["calls"] is None


def test_analytics_empty_namespace_is_a_valid_answer(gw: InProcessGateway) -> None:
    out = report(gw, "/analytics", namespace=ns())
    assert out["timeSeries"] == [] and out["tools"] == [] and out["topConsumers"] == []
    assert out["summary"]["totalCalls"] == 0 and out["summary"]["successRate"] == 0.0
    assert out["trend"]["change"] == {"calls": None, "credits": None, "denied": None}


def test_analytics_csv_is_the_time_series(gw: InProcessGateway) -> None:
    space = ns()
    day, _, _ = _history(gw, space)
    resp = get(gw, "/analytics", namespace=space, format="csv", **{"from": iso(at(day, 10)), "to": iso(at(day, 12))})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [int(r["calls"]) for r in rows] == [3, 1]


@pytest.mark.parametrize(
    "params",
    [
        {"granularity": "weekly"},
        {"topN": "0"},
        {"topN": "x"},
        {"from": "2026-01-01", "since": "2026-01-01"},
        {"to": "2026-01-01", "until": "2026-01-01"},
        {"from": "soon"},
        {"to": "later"},
        {"from": "2026-02-02", "to": "2026-02-01"},
        {"namespace": ""},
        {"bogus": "1"},
    ],
)
def test_analytics_bad_parameters_are_400(gw: InProcessGateway, params: dict[str, str]) -> None:
    resp = get(gw, "/analytics", **params)
    assert resp.status_code == 400, (params, resp.text)


# /admin/dashboard ---------------------------------------------------------------------------------------


def test_dashboard_counts_calls_keys_and_uptime(gw: InProcessGateway) -> None:
    before = report(gw, "/admin/dashboard")
    key = new_key(gw, 50)
    calls(gw, key, 4)
    after = report(gw, "/admin/dashboard", limit=1)
    assert after["keys"]["total"] == before["keys"]["total"] + 1
    assert after["usage"]["totalCalls"] == before["usage"]["totalCalls"] + 4
    assert after["usage"]["totalAllowed"] == before["usage"]["totalAllowed"] + 4
    assert after["usage"]["totalCreditsSpent"] == before["usage"]["totalCreditsSpent"] + 4
    assert after["credits"]["totalSpent"] == before["credits"]["totalSpent"] + 4
    assert len(after["topConsumers"]) == 1 and len(after["topTools"]) == 1
    tools = report(gw, "/admin/dashboard", limit=100)["topTools"]
    assert "echo" in [t["tool"] for t in tools]
    assert [t["calls"] for t in tools] == sorted((t["calls"] for t in tools), reverse=True)
    assert set(after["notifications"]) == {"critical", "warning", "info"}
    assert after["uptime"]["uptimeSeconds"] >= 0 and after["uptime"]["startedAt"].endswith("Z")


def test_dashboard_deny_reasons(gw: InProcessGateway) -> None:
    space = ns()
    key = new_key(gw, 1, namespace=space)
    before = {r["reason"]: r["count"] for r in report(gw, "/admin/dashboard")["usage"]["denyReasons"]}
    calls(gw, key, 3)  # one paid, two refused for credits
    after = report(gw, "/admin/dashboard")
    reasons = {r["reason"]: r["count"] for r in after["usage"]["denyReasons"]}
    assert reasons["insufficient_credits"] == before.get("insufficient_credits", 0) + 2
    counts = [r["count"] for r in after["usage"]["denyReasons"]]
    assert counts == sorted(counts, reverse=True)


def test_dashboard_csv_and_bad_limit(gw: InProcessGateway) -> None:
    calls(gw, new_key(gw, 5))
    resp = get(gw, "/admin/dashboard", format="csv")
    assert resp.status_code == 200 and resp.text.startswith("name,key,calls,credits,denied")
    assert get(gw, "/admin/dashboard", limit="0").status_code == 400
    assert get(gw, "/admin/dashboard", severity="critical").status_code == 400


# /admin/notifications -----------------------------------------------------------------------------------


def _notes(gw: InProcessGateway, space: str, **params: str) -> list[tuple[str, str, str]]:
    out = report(gw, "/admin/notifications", namespace=space, **params)
    assert out["total"] == len(out["notifications"])
    assert out["total"] == out["critical"] + out["warning"] + out["info"]
    return [(n["severity"], n["category"], n["keyName"]) for n in out["notifications"]]


def test_notifications_by_category_and_severity(gw: InProcessGateway) -> None:
    space = ns()
    new_key(gw, 0, namespace=space, name="empty")
    new_key(gw, 500, namespace=space, name="soon", expiresIn=3600)
    new_key(gw, 500, namespace=space, name="week", expiresIn=3 * DAY)
    paused = new_key(gw, 500, namespace=space, name="paused")
    gone = new_key(gw, 0, namespace=space, name="gone")
    flaky = new_key(gw, 500, namespace=space, name="flaky")
    burner = new_key(gw, 10, namespace=space, name="burner")
    assert gw.client.post("/keys/suspend", json={"key": paused}, headers=gw.admin()).status_code == 200
    assert gw.client.post("/keys/revoke", json={"key": gone}, headers=gw.admin()).status_code == 200
    now = time.time()
    record(gw, [CallFact(now - 60, key_hash(flaky), "echo", space, "rate_limited" if i < 6 else "") for i in range(10)])
    record(gw, [CallFact(now - 120, key_hash(burner), "echo", space, "", credits=120)])  # 5/h: 2 hours left
    assert _notes(gw, space) == [
        ("critical", "credits_depleting", "burner"),
        ("critical", "zero_credits", "empty"),
        ("critical", "high_error_rate", "flaky"),
        ("critical", "key_expiring_soon", "soon"),
        ("warning", "key_expiring_soon", "week"),
        ("info", "key_suspended", "paused"),
    ]
    assert _notes(gw, space, severity="warning") == [("warning", "key_expiring_soon", "week")]
    out = report(gw, "/admin/notifications", namespace=space, severity="critical", limit=1)
    assert out["total"] == 4 and len(out["notifications"]) == 1
    burn = next(
        n for n in report(gw, "/admin/notifications", namespace=space)["notifications"] if n["keyName"] == "burner"
    )
    assert burn["details"] == {"credits": 10, "creditsPerHour": 5.0, "estimatedHoursRemaining": 2.0}


def test_notifications_group_filter_and_bad_parameters(gw: InProcessGateway) -> None:
    space = ns()
    new_key(gw, 0, namespace=space, name="outside")
    inside = new_key(gw, 0, namespace=space, name="inside")
    group = gw.client.post("/groups", json={"name": f"g-{space}"}, headers=gw.admin()).json()
    resp = gw.client.post("/groups/assign", json={"key": inside, "groupId": group["id"]}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    assert [n[2] for n in _notes(gw, space, group=f"g-{space}")] == ["inside"]
    assert [n[2] for n in _notes(gw, space, group=group["id"])] == ["inside"]
    for params in ({"severity": "fatal"}, {"limit": "0"}, {"topN": "3"}):
        assert get(gw, "/admin/notifications", **params).status_code == 400, params
    assert get(gw, "/admin/notifications", group="no-such-group").status_code == 404


# /admin/system-health -----------------------------------------------------------------------------------


def test_system_health_shape(gw: InProcessGateway) -> None:
    new_key(gw, 100)
    out = report(gw, "/admin/system-health")
    assert 0 <= out["score"] <= 100
    assert out["level"] in ("healthy", "good", "warning", "critical")
    parts = out["components"]
    assert {k: v["weight"] for k, v in parts.items()} == {
        "keyHealth": 0.4,
        "errorRate": 0.35,
        "creditUtilization": 0.25,
    }
    expected = sum(v["score"] * v["weight"] for v in parts.values())
    assert abs(out["score"] - expected) <= 0.5 + 1e-9
    assert get(gw, "/admin/system-health", limit="3").status_code == 400
    resp = get(gw, "/admin/system-health", format="csv")
    assert resp.status_code == 200 and "components.keyHealth.score" in resp.text.splitlines()[0]
