"""The money reports through HTTP: real calls and recorded history, each report's filters, CSV, bad parameters.
Reports are fleet-wide and the gateway is shared by this module: each test works in a namespace (and tools)
of its own, or asserts on deltas."""

from __future__ import annotations

import csv
import io
import time
import uuid

import pytest

from paygate.store.rollups import CallFact
from tests.api.analytics.support import calls, get, key_hash, new_key, record, report
from tests.inprocess import InProcessGateway

MONEY = (
    "costs",
    "revenue",
    "credit-flow",
    "credit-efficiency",
    "credit-distribution",
    "credit-utilization",
    "credit-allocation",
    "credit-burn-rate",
    "credit-waste",
    "revenue-forecast",
    "forecast",
    "anomalies",
    "tool-revenue",
    "tool-profitability",
)
KEYED = ("costs", "revenue", "credit-flow", "forecast", "anomalies", "tool-revenue", "tool-profitability")
GROUPED = (
    "credit-efficiency",
    "credit-distribution",
    "credit-utilization",
    "credit-allocation",
    "credit-burn-rate",
    "credit-waste",
    "revenue-forecast",
    "forecast",
)


def ns() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


def test_call_reports_count_real_calls(gw: InProcessGateway) -> None:
    space = ns()
    key = new_key(gw, 50, namespace=space, name="payer")
    new_key(gw, 0, namespace=space, name="idle")
    calls(gw, key, 3)
    costs = report(gw, "/admin/costs", namespace=space)
    assert costs["summary"] == {
        "totalCredits": 3,
        "totalCalls": 3,
        "totalAllowed": 3,
        "totalDenied": 0,
        "totalRefunded": 0,
        "avgCostPerCall": 1.0,
    }
    assert costs["perTool"][0]["tool"] == "echo" and costs["perTool"][0]["credits"] == 3
    assert costs["perNamespace"] == [{"namespace": space, "calls": 3, "credits": 3}]
    assert costs["topSpenders"][0]["name"] == "payer" and costs["topSpenders"][0]["credits"] == 3
    assert key not in str(costs) and costs["topSpenders"][0]["key"].endswith(key[-4:])
    assert sum(h["calls"] for h in costs["hourlyTrends"]) == 3

    revenue = report(gw, "/admin/revenue", namespace=space)
    assert revenue["summary"]["totalRevenue"] == 3 and revenue["summary"]["totalCalls"] == 3
    assert revenue["byKey"][0]["revenue"] == 3
    assert revenue["creditFlow"] == {"totalAllocated": 50, "totalSpent": 3, "totalRemaining": 47}

    flow = report(gw, "/admin/credit-flow", namespace=space)
    assert flow["summary"] == {"totalAllocated": 50, "totalSpent": 3, "totalRemaining": 47, "utilizationPct": 6.0}
    assert flow["topSpenders"][0]["keyName"] == "payer" and flow["topSpenders"][0]["creditsRemaining"] == 47

    tools = report(gw, "/admin/tool-revenue", namespace=space)
    assert tools["tools"] == [
        {
            "tool": "echo",
            "totalCredits": 3,
            "callCount": 3,
            "avgCreditsPerCall": 1.0,
            "uniqueConsumers": 1,
            "percentage": 100.0,
        }
    ]
    profit = report(gw, "/admin/tool-profitability", namespace=space)
    assert profit["tools"][0]["totalRevenue"] == 3 and profit["tools"][0]["callerCount"] == 1
    assert profit["summary"]["mostProfitable"] == profit["summary"]["leastProfitable"] == "echo"


def test_key_filter_takes_the_key_or_its_alias(gw: InProcessGateway) -> None:
    space = ns()
    key = new_key(gw, 20, namespace=space)
    other = new_key(gw, 20, namespace=space)
    calls(gw, key, 2)
    calls(gw, other, 1)
    alias = f"a-{uuid.uuid4().hex[:6]}"
    assert gw.client.post("/keys/alias", json={"key": key, "alias": alias}, headers=gw.admin()).status_code == 200
    for ref in (key, alias):
        assert report(gw, "/admin/costs", key=ref)["summary"]["totalCalls"] == 2
        assert report(gw, "/admin/tool-revenue", key=ref)["summary"]["totalRevenue"] == 2
    assert report(gw, "/admin/forecast", key=alias)["summary"]["totalActiveKeys"] == 1
    assert get(gw, "/admin/costs", key="pg_nope").status_code == 404


def test_denied_calls_cost_nothing_and_are_not_revenue(gw: InProcessGateway) -> None:
    space = ns()
    key = new_key(gw, 1, namespace=space)
    calls(gw, key, 3)  # one paid, two refused for want of credits
    costs = report(gw, "/admin/costs", namespace=space)["summary"]
    assert (costs["totalCalls"], costs["totalAllowed"], costs["totalDenied"], costs["totalCredits"]) == (3, 1, 2, 1)
    assert report(gw, "/admin/revenue", namespace=space)["summary"]["totalCalls"] == 1
    found = report(gw, "/admin/anomalies", namespace=space)["anomalies"]
    kinds = {a["type"] for a in found}
    assert {"high_denial_rate", "rapid_credit_depletion", "low_credits"} <= kinds


def test_balance_reports_of_a_namespace(gw: InProcessGateway) -> None:
    space = ns()
    for credits in (0, 5, 60, 700, 5000):
        new_key(gw, credits, namespace=space)
    dist = report(gw, "/admin/credit-distribution", namespace=space)
    assert dist["buckets"] == [
        {"range": "0-10", "count": 2, "totalCredits": 5},
        {"range": "51-100", "count": 1, "totalCredits": 60},
        {"range": "501-1000", "count": 1, "totalCredits": 700},
        {"range": "1001+", "count": 1, "totalCredits": 5000},
    ]
    assert dist["summary"] == {"totalKeys": 5, "totalCredits": 5765, "medianCredits": 60}
    util = report(gw, "/admin/credit-utilization", namespace=space)
    assert util["bands"] == [{"range": "0%", "count": 5, "percentage": 100.0}]
    alloc = report(gw, "/admin/credit-allocation", namespace=space)
    assert [(t["tier"], t["count"]) for t in alloc["tiers"]] == [("0", 1), ("1-100", 2), ("101-500", 0), ("501+", 2)]
    assert alloc["summary"]["averageAllocation"] == 1153.0
    waste = report(gw, "/admin/credit-waste", namespace=space)
    assert waste["summary"] == {
        "totalKeys": 4,
        "totalAllocated": 5765,
        "totalWasted": 5765,
        "averageWastePercent": 100.0,
    }
    eff = report(gw, "/admin/credit-efficiency", namespace=space)
    assert eff["summary"]["burnEfficiency"] == 0 and eff["summary"]["wasteRatio"] == 100
    assert [k["credits"] for k in eff["overProvisioned"]] == [5000, 700, 60, 5]
    burn = report(gw, "/admin/credit-burn-rate", namespace=space)
    assert burn["burnRate"]["creditsPerHour"] == 0 and burn["burnRate"]["hoursUntilDepleted"] is None


def test_empty_namespace_answers_zeros(gw: InProcessGateway) -> None:
    space = ns()
    for name in MONEY:
        out = report(gw, f"/admin/{name}", namespace=space)
        assert "generatedAt" in out or "analyzedAt" in out
    assert report(gw, "/admin/credit-distribution", namespace=space)["summary"]["medianCredits"] is None
    forecast = report(gw, "/admin/revenue-forecast", namespace=space)
    assert forecast["forecast"] == {"nextHour": 0, "nextDay": 0, "nextWeek": 0, "nextMonth": 0}
    assert report(gw, "/admin/tool-profitability", namespace=space)["summary"]["mostProfitable"] is None


def test_group_filter_by_id_or_name(gw: InProcessGateway) -> None:
    name = f"g-{uuid.uuid4().hex[:6]}"
    resp = gw.client.post("/groups", json={"name": name}, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    group = resp.json()["id"]
    key = new_key(gw, 42)
    assign = gw.client.post("/groups/assign", json={"key": key, "groupId": group}, headers=gw.admin())
    assert assign.status_code == 200, assign.text
    for ref in (group, name):
        assert report(gw, "/admin/credit-distribution", group=ref)["summary"]["totalCredits"] == 42
    for path in GROUPED:
        assert get(gw, f"/admin/{path}", group=group).status_code == 200
    assert get(gw, "/admin/credit-waste", group="no-such-group").status_code == 404


def test_revenue_forecast_of_a_flat_recorded_week(gw: InProcessGateway) -> None:
    space = ns()
    key = new_key(gw, 10_000, namespace=space)
    h = key_hash(key)
    current = int(time.time() // 3600)
    record(gw, [CallFact((current - a) * 3600 + 60, h, "metered", space, "", credits=10) for a in range(1, 169)])
    since = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime((current - 168) * 3600))
    out = report(gw, "/admin/revenue-forecast", namespace=space, since=since)
    assert out["current"]["creditsPerHour"] == 10
    assert out["forecast"] == {"nextHour": 10, "nextDay": 240, "nextWeek": 1680, "nextMonth": 7200}
    assert out["trend"]["slopePerHour"] == 0 and out["trend"]["measuredHours"] == 168
    poor = ns()  # the same week of spend, but only 100 credits left to spend
    h = key_hash(new_key(gw, 100, namespace=poor))
    record(gw, [CallFact((current - a) * 3600 + 60, h, "metered", poor, "", credits=10) for a in range(1, 169)])
    capped = report(gw, "/admin/revenue-forecast", namespace=poor, since=since)
    assert capped["forecast"] == {"nextHour": 10, "nextDay": 100, "nextWeek": 100, "nextMonth": 100}


def test_a_tool_spike_is_an_anomaly(gw: InProcessGateway) -> None:
    space = ns()
    tool = f"spiky_{uuid.uuid4().hex[:6]}"
    current = int(time.time() // 3600)
    facts = [
        CallFact((current - a) * 3600 + i, None, tool, space, "", credits=1)
        for a in range(2, 24 + 168 + 1)
        for i in range(4)
    ]
    facts += [CallFact((current - 1) * 3600 + i, None, tool, space, "", credits=1) for i in range(40)]
    record(gw, facts)
    out = report(gw, "/admin/anomalies", namespace=space)
    spikes = [a for a in out["anomalies"] if a["tool"] == tool]
    assert len(spikes) == 1
    spike = spikes[0]
    assert spike["type"] == "tool_usage_spike" and spike["severity"] == "critical"
    assert spike["details"]["calls"] == 40 and spike["details"]["medianCalls"] == 4
    assert spike["details"]["zScore"] == 18.0  # (40 - 4) / √4
    assert report(gw, "/admin/anomalies", namespace=space, severity="info")["summary"]["totalAnomalies"] == 0
    assert report(gw, "/admin/anomalies", namespace=space, threshold=50)["summary"]["totalAnomalies"] == 0


def test_window_selects_calls_and_key_cohorts(gw: InProcessGateway) -> None:
    space = ns()
    key = new_key(gw, 10, namespace=space)
    long_ago = time.time() - 300 * 86400
    record(gw, [CallFact(long_ago, key_hash(key), "old", space, "", credits=7)])
    day = time.strftime("%Y-%m-%d", time.gmtime(long_ago))
    inside = report(gw, "/admin/costs", namespace=space, since=day, until=day + "T23:59:59Z")
    assert inside["summary"]["totalCredits"] == 7 and inside["since"] == f"{day}T00:00:00.000Z"
    assert (
        report(gw, "/admin/tool-revenue", namespace=space, since=day, until=day + "T23:59:59Z")["tools"][0]["tool"]
        == "old"
    )
    # The key was created today: it is not in a cohort of keys created that day.
    assert (
        report(gw, "/admin/credit-distribution", namespace=space, since=day, until=day + "T23:59:59Z")["summary"][
            "totalKeys"
        ]
        == 0
    )
    assert report(gw, "/admin/credit-distribution", namespace=space)["summary"]["totalKeys"] == 1


@pytest.mark.parametrize("name", MONEY)
def test_csv_export(gw: InProcessGateway, name: str) -> None:
    space = ns()
    key = new_key(gw, 10, namespace=space)
    calls(gw, key, 1)
    resp = get(gw, f"/admin/{name}", format="csv", namespace=space)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    list(csv.DictReader(io.StringIO(resp.text)))


def test_bad_parameters_are_400(gw: InProcessGateway) -> None:
    before = report(gw, "/admin/credit-allocation")
    cases: list[tuple[str, dict[str, str]]] = [(n, {"bogus": "1"}) for n in MONEY]
    cases += [(n, {"since": "yesterday"}) for n in MONEY]
    cases += [(n, {"limit": "0"}) for n in ("costs", "credit-waste", "forecast", "anomalies")]
    cases += [(n, {"key": "x"}) for n in MONEY if n not in KEYED]
    cases += [(n, {"group": "x"}) for n in MONEY if n not in GROUPED]
    cases += [("anomalies", {"severity": "loud"}), ("anomalies", {"threshold": "0"}), ("costs", {"limit": "x"})]
    for name, params in cases:
        resp = get(gw, f"/admin/{name}", **params)
        assert resp.status_code == 400, (name, params, resp.status_code, resp.text)
    after = report(gw, "/admin/credit-allocation")
    assert after["summary"] == before["summary"]


def test_needs_an_admin_key(gw: InProcessGateway) -> None:
    for name in MONEY:
        assert gw.client.get(f"/admin/{name}").status_code == 401
