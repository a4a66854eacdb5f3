"""The traffic reports through HTTP after real calls. Each test uses a namespace of its own (the gateway is
shared by the module), so its numbers are exact; history at chosen times is recorded for the series."""

from __future__ import annotations

import csv
import io
import time
import uuid
from typing import Any

import pytest

from paygate.store.rollups import CallFact
from tests.api.analytics.support import calls, get, key_hash, new_key, record, report
from tests.inprocess import InProcessGateway

REPORTS = (
    "traffic",
    "request-trends",
    "hourly-traffic",
    "peak-usage",
    "daily-summary",
    "access-heatmap",
    "latency",
    "response-time-distribution",
    "sla",
    "capacity",
    "dependencies",
    "error-trends",
    "error-breakdown",
    "tool-error-rate",
    "denials",
)

TABLES = {  # the list each report's CSV holds
    "traffic": "toolPopularity",
    "request-trends": "hourly",
    "hourly-traffic": "hours",
    "peak-usage": "hours",
    "daily-summary": "days",
    "access-heatmap": "hourly",
    "latency": "byTool",
    "response-time-distribution": "buckets",
    "sla": "byTool",
    "capacity": "topConsumers",
    "dependencies": "toolUsage",
    "error-trends": "byTool",
    "error-breakdown": "errors",
    "tool-error-rate": "tools",
    "denials": "perKey",
}


def namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


def fleet(gw: InProcessGateway) -> tuple[str, str, str, str]:
    """In a new namespace: `poor` makes 3 echo calls with 2 credits (2 admitted, 1 insufficient_credits);
    `rich` makes 2 echo calls and one `fail` call (admitted, the backend fails)."""
    ns = namespace()
    poor = new_key(gw, 2, namespace=ns, name=f"poor-{ns}")
    rich = new_key(gw, 100, namespace=ns, name=f"rich-{ns}")
    calls(gw, poor, 3)
    calls(gw, rich, 2)
    gw.call_tool("fail", {}, rich)
    return ns, poor, rich, f"poor-{ns}"


@pytest.fixture(scope="module")
def world(gw: InProcessGateway) -> tuple[str, str, str, str]:
    return fleet(gw)


def test_traffic(gw: InProcessGateway, world: tuple[str, str, str, str]) -> None:
    ns, _, _, poor = world
    out = report(gw, "/admin/traffic", namespace=ns)
    assert {k: out["summary"][k] for k in ("totalCalls", "totalAllowed", "totalDenied", "totalFailed")} == {
        "totalCalls": 6,
        "totalAllowed": 5,
        "totalDenied": 1,
        "totalFailed": 1,
    }
    assert out["summary"]["successRate"] == round(5 / 6, 4)
    assert out["summary"]["uniqueKeys"] == 2 and out["summary"]["uniqueTools"] == 2
    assert out["summary"]["peakHourCalls"] == 6
    assert out["toolPopularity"][0] == {"tool": "echo", "calls": 5, "successRate": 0.8, "failed": 0, "credits": 4}
    assert len(out["hourlyVolume"]) == 24 and out["hourlyVolume"][-1]["calls"] == 6
    assert [c["calls"] for c in out["topConsumers"]] == [3, 3]
    assert {c["name"] for c in out["topConsumers"]} == {poor, poor.replace("poor", "rich")}
    assert all("…" in c["key"] for c in out["topConsumers"])
    assert out["byNamespace"] == [{"namespace": ns, "calls": 6, "allowed": 5, "denied": 1, "credits": 5}]
    assert len(report(gw, "/admin/traffic", namespace=ns, limit=1)["topConsumers"]) == 1


def total(rows: list[dict[str, Any]], *fields: str) -> dict[str, int]:
    """Fields summed over a series' rows (the calls may straddle an hour or a day)."""
    return {f: sum(r[f] for r in rows) for f in fields}


def test_hourly_series(gw: InProcessGateway, world: tuple[str, str, str, str]) -> None:
    ns = world[0]
    trends = report(gw, "/admin/request-trends", namespace=ns)
    assert total(trends["hourly"], "total", "allowed", "denied", "failed", "credits") == {
        "total": 6,
        "allowed": 5,
        "denied": 1,
        "failed": 1,
        "credits": 5,
    }
    assert trends["summary"]["avgDurationMs"] > 0 and trends["summary"]["totalRequests"] == 6
    assert [h["hour"] for h in trends["hourly"]] == sorted(h["hour"] for h in trends["hourly"])
    hourly = report(gw, "/admin/hourly-traffic", namespace=ns)["hours"]
    assert total(hourly, "requests")["requests"] == 6
    assert max(h["uniqueConsumers"] for h in hourly) <= 2 and max(h["uniqueTools"] for h in hourly) <= 2
    assert [h["timestamp"] for h in hourly] == sorted((h["timestamp"] for h in hourly), reverse=True)
    heat = report(gw, "/admin/access-heatmap", namespace=ns)
    tools: dict[str, int] = {}
    for h in heat["hourly"]:
        for tool, n in h["tools"].items():
            tools[tool] = tools.get(tool, 0) + n
    assert tools == {"echo": 5, "fail": 1} and heat["summary"]["totalRequests"] == 6
    peak = report(gw, "/admin/peak-usage", namespace=ns)
    assert total(peak["hours"], "requests", "credits") == {"requests": 6, "credits": 5}
    assert round(sum(h["percentage"] for h in peak["hours"])) == 100
    assert peak["summary"]["peakHour"] in {h["hour"] for h in peak["hours"]}
    daily = report(gw, "/admin/daily-summary", namespace=ns)
    assert total(daily["days"], "requests", "creditsSpent", "newKeys") == {
        "requests": 6,
        "creditsSpent": 5,
        "newKeys": 2,
    }
    assert daily["summary"]["totalRequests"] == 6 and daily["summary"]["totalNewKeys"] == 2


def test_series_over_recorded_history(gw: InProcessGateway) -> None:
    ns = namespace()
    key = new_key(gw, 10, namespace=ns)
    start = (int(time.time() // 3600) - 24 * 400) * 3600  # an hour 400 days ago
    record(
        gw,
        [
            CallFact(start + 60, key_hash(key), "echo", ns, "", credits=2, duration_ms=8.0),
            CallFact(start + 120, key_hash(key), "echo", ns, "rate_limited"),
            CallFact(start + 2 * 3600, key_hash(key), "add", ns, "", credits=1, duration_ms=30.0),
        ],
    )
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 3 * 3600))  # hours 0-3: halves 0-1 and 2-3
    trends = report(gw, "/admin/request-trends", namespace=ns, since=since, until=until)
    assert [(h["total"], h["credits"], h["avgDurationMs"]) for h in trends["hourly"]] == [(2, 2, 8.0), (1, 1, 30.0)]
    assert trends["since"] == time.strftime("%Y-%m-%dT%H:00:00.000Z", time.gmtime(start))
    assert report(gw, "/admin/request-trends", namespace=ns)["hourly"] == []  # the default: the last 24 hours
    errors = report(gw, "/admin/error-trends", namespace=ns, since=since, until=until)
    assert errors["summary"]["firstHalfErrorRate"] == 50.0 and errors["summary"]["secondHalfErrorRate"] == 0.0
    assert errors["summary"]["trend"] == "improving"
    latency = report(gw, "/admin/latency", namespace=ns, since=since, until=until)
    assert latency["summary"]["totalCalls"] == 2 and latency["summary"]["avgDurationMs"] == 19.0
    assert [t["tool"] for t in latency["byTool"]] == ["add", "echo"]
    assert latency["byTool"][0]["minDurationMs"] == 30.0 == latency["byTool"][0]["maxDurationMs"]


def test_latency_and_distribution(gw: InProcessGateway, world: tuple[str, str, str, str]) -> None:
    ns = world[0]
    out = report(gw, "/admin/latency", namespace=ns)
    summary = out["summary"]
    assert summary["totalCalls"] == 5  # admitted calls only
    assert summary["minDurationMs"] <= summary["p50DurationMs"] <= summary["p95DurationMs"] <= summary["maxDurationMs"]
    assert {t["tool"] for t in out["byTool"]} == {"echo", "fail"}
    assert len(out["byKey"]) == 2
    dist = report(gw, "/admin/response-time-distribution", namespace=ns)
    assert sum(b["count"] for b in dist["buckets"]) == 5 == dist["summary"]["totalRequests"]
    assert round(sum(b["percentage"] for b in dist["buckets"])) == 100
    assert dist["summary"]["p50"] is not None


def test_errors_and_denials(gw: InProcessGateway, world: tuple[str, str, str, str]) -> None:
    ns, _, _, poor = world
    sla = report(gw, "/admin/sla", namespace=ns)
    assert sla["summary"]["successRate"] == 83.33
    assert sla["summary"]["denialReasons"] == {"insufficient_credits": 1}
    assert sla["summary"]["backendSuccessRate"] == 80.0
    assert [t["tool"] for t in sla["byTool"]] == ["echo", "fail"]
    assert sla["uptime"]["uptimeSeconds"] >= 0
    breakdown = report(gw, "/admin/error-breakdown", namespace=ns)
    assert breakdown["errors"] == [
        {"reason": "insufficient_credits", "count": 1, "percentage": 100.0, "affectedConsumers": 1}
    ]
    assert breakdown["summary"]["failureAffectedConsumers"] == 1
    rates = report(gw, "/admin/tool-error-rate", namespace=ns)
    assert rates["tools"][0]["tool"] == "echo" and rates["tools"][0]["errorRate"] == 20.0
    assert rates["summary"]["highestErrorTool"] == "echo" and rates["summary"]["highestFailureTool"] == "fail"
    trends = report(gw, "/admin/error-trends", namespace=ns)
    assert trends["summary"]["overallErrorRate"] == 16.67 and trends["summary"]["trend"] == "stable"
    denials = report(gw, "/admin/denials", namespace=ns)
    assert denials["summary"] == {"totalCalls": 6, "totalDenials": 1, "denialRate": round(1 / 6, 4)}
    assert [(k["name"], k["denials"], k["topReason"]) for k in denials["perKey"]] == [(poor, 1, "insufficient_credits")]
    assert denials["mostDenied"][0]["name"] == poor
    assert len(denials["hourlyTrends"]) == 24 and denials["hourlyTrends"][-1]["denials"] == 1


def test_capacity_and_dependencies(gw: InProcessGateway, world: tuple[str, str, str, str]) -> None:
    ns, _, _, poor = world
    cap = report(gw, "/admin/capacity", namespace=ns)
    assert cap["summary"]["totalCreditsSpent"] == 5 and cap["summary"]["totalCreditsAllocated"] == 102
    assert cap["summary"]["burnRate"]["totalCalls"] == 6
    assert list(cap["byNamespace"]) == [ns]
    assert "1 key(s) have no credits left" in cap["recommendations"]
    assert cap["topConsumers"][0]["keyName"] == poor.replace("poor", "rich")
    dep = report(gw, "/admin/dependencies", namespace=ns)
    assert dep["toolUsage"] == [
        {"tool": "echo", "totalCalls": 4, "uniqueKeys": 2},
        {"tool": "fail", "totalCalls": 1, "uniqueKeys": 1},
    ]
    assert "add" in dep["unusedTools"] and dep["summary"]["usedTools"] == 2
    assert (dep["keyToolMap"][0]["keyName"], dep["keyToolMap"][0]["toolCount"]) == (poor.replace("poor", "rich"), 2)


@pytest.mark.parametrize("name", REPORTS)
def test_empty_namespace_answers_zeros(gw: InProcessGateway, name: str) -> None:
    out = report(gw, f"/admin/{name}", namespace=namespace())
    summary: dict[str, Any] = out.get("summary", {})
    for field in ("totalCalls", "totalRequests", "totalDenials", "totalDenied"):
        if field in summary:
            assert summary[field] == 0, (name, field)


@pytest.mark.parametrize("name", REPORTS)
def test_csv(gw: InProcessGateway, world: tuple[str, str, str, str], name: str) -> None:
    resp = get(gw, f"/admin/{name}", namespace=world[0], format="csv")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    table = report(gw, f"/admin/{name}", namespace=world[0])[TABLES[name]]
    assert len(rows) == len(table) > 0, name


@pytest.mark.parametrize("name", REPORTS)
def test_bad_parameters_are_400(gw: InProcessGateway, name: str) -> None:
    before = report(gw, "/admin/system-overview")["activity"]
    for params in ({"limit": "0"}, {"limit": "x"}, {"namespace": ""}, {"bogus": "1"}, {"since": "soon"}):
        resp = get(gw, f"/admin/{name}", **params)
        assert resp.status_code == 400, (name, params, resp.text)
    assert report(gw, "/admin/system-overview")["activity"] == before
    assert gw.client.get(f"/admin/{name}").status_code == 401
