"""Overview key-state and governance reports over HTTP: key-health-overview, key-status, key-portfolio,
key-age, key-churn, lifecycle, security, compliance, audit-summary. Each test works in a namespace of its
own (the key-state reports take `namespace`), or asserts deltas."""

from __future__ import annotations

import csv
import io
import time
import uuid
from typing import Any

import pytest

from tests.api.analytics.support import calls, get, new_key, report
from tests.inprocess import InProcessGateway

KEY_REPORTS = ("key-health-overview", "key-status", "key-portfolio", "key-age", "key-churn", "security", "compliance")


def ns() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


def post(gw: InProcessGateway, path: str, body: dict[str, Any]) -> None:
    resp = gw.client.post(path, json=body, headers=gw.admin())
    assert resp.status_code in (200, 201), resp.text


def test_key_health_overview(gw: InProcessGateway) -> None:
    space = ns()
    new_key(gw, 0, namespace=space, name="depleted")
    worn = new_key(gw, 4, namespace=space, name="worn")
    calls(gw, worn, 3)  # 3 of 4 spent: 75 %
    new_key(gw, 100, namespace=space, name="fresh")
    post(gw, "/keys/suspend", {"key": new_key(gw, 0, namespace=space, name="paused")})
    out = report(gw, "/admin/key-health-overview", namespace=space)
    assert [
        (k["name"], k["credits"], k["totalSpent"], k["totalCalls"], k["utilizationPercent"], k["status"])
        for k in out["keys"]
    ] == [
        ("depleted", 0, 0, 0, 0.0, "critical"),
        ("worn", 1, 3, 3, 75.0, "warning"),
        ("fresh", 100, 0, 0, 0.0, "healthy"),
    ]
    assert out["summary"] == {"totalKeys": 3, "healthDistribution": {"healthy": 1, "warning": 1, "critical": 1}}
    assert len(report(gw, "/admin/key-health-overview", namespace=space, limit=1)["keys"]) == 1
    rows = list(csv.DictReader(io.StringIO(get(gw, "/admin/key-health-overview", namespace=space, format="csv").text)))
    assert [r["name"] for r in rows] == ["depleted", "worn", "fresh"]


def test_key_status_and_churn(gw: InProcessGateway) -> None:
    space = ns()
    new_key(gw, 5, namespace=space, name="low")
    new_key(gw, 500, namespace=space, name="soon", expiresIn=7200)
    used = new_key(gw, 500, namespace=space, name="used")
    calls(gw, used, 1)
    post(gw, "/keys/suspend", {"key": new_key(gw, 500, namespace=space, name="paused")})
    post(gw, "/keys/revoke", {"key": new_key(gw, 500, namespace=space, name="gone")})
    out = report(gw, "/admin/key-status", namespace=space)
    assert out["counts"] == {"total": 5, "active": 3, "suspended": 1, "revoked": 1, "expired": 0}
    assert [(a["keyName"], a["issue"]) for a in out["needsAttention"]] == [
        ("low", "low_credits"),
        ("soon", "expiring_soon"),
    ]
    assert out["needsAttention"][0]["detail"] == "5 credits remaining"
    assert out["needsAttention"][1]["detail"] == "Expires in 2 hours"
    churn = report(gw, "/admin/key-churn", namespace=space)["summary"]
    assert churn == {
        "totalKeys": 5,
        "activeKeys": 3,
        "revokedKeys": 1,
        "suspendedKeys": 1,
        "expiredKeys": 0,
        "neverUsedKeys": 2,
        "churnRate": 20.0,
        "retentionRate": 80.0,
        "avgCreditsPerKey": round((5 + 500 + 499) / 3, 2),
    }
    assert get(gw, "/admin/key-churn", namespace=space, limit="3").status_code == 400  # churn lists nothing


def test_key_portfolio_and_age(gw: InProcessGateway) -> None:
    space = ns()
    used = new_key(gw, 10, namespace=space, name="used")
    calls(gw, used, 5)
    new_key(gw, 10, namespace=space, name="idle")
    new_key(gw, 10, namespace=space, name="temp", expiresIn=3600)
    post(gw, "/keys/revoke", {"key": new_key(gw, 10, namespace=space, name="gone")})
    out = report(gw, "/admin/key-portfolio", namespace=space)
    assert out["summary"] == {
        "totalKeys": 4,
        "activeKeys": 3,
        "inactiveKeys": 1,
        "suspendedKeys": 0,
        "averageCreditUtilization": round(0.5 / 3, 4),  # used spent 5 of 10; idle and temp none
    }
    assert [k["name"] for k in out["staleKeys"]] == ["idle", "temp"]
    assert [(k["name"], k["hoursRemaining"]) for k in out["expiringSoon"]] == [("temp", 1.0)]
    assert out["ageDistribution"]["newestAgeDays"] == 0.0
    assert out["byNamespace"] == [
        {"namespace": space, "total": 4, "active": 3, "suspended": 0, "revoked": 1, "expired": 0}
    ]
    age = report(gw, "/admin/key-age", namespace=space, limit=2)
    assert age["summary"]["totalKeys"] == 3 and age["distribution"] == {
        "last24h": 3,
        "last7d": 0,
        "last30d": 0,
        "older": 0,
    }
    assert [k["keyName"] for k in age["recentlyCreated"]] == ["temp", "idle"]
    assert age["summary"]["oldestKey"]["keyName"] == "used"


def test_group_filter_and_cohort_window(gw: InProcessGateway) -> None:
    space = ns()
    new_key(gw, 10, namespace=space, name="loose")
    member = new_key(gw, 10, namespace=space, name="member")
    group = gw.client.post("/groups", json={"name": f"g-{space}"}, headers=gw.admin()).json()
    post(gw, "/groups/assign", {"key": member, "groupId": group["id"]})
    out = report(gw, "/admin/key-status", group=f"g-{space}")
    assert out["counts"]["total"] == 1
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    for name in KEY_REPORTS:
        later = report(gw, f"/admin/{name}", namespace=space, since=tomorrow)  # keys created from tomorrow: none
        assert later["since"].startswith(tomorrow)
    assert report(gw, "/admin/key-status", namespace=space, since=tomorrow)["counts"]["total"] == 0
    assert report(gw, "/admin/key-age", namespace=space, since=tomorrow)["summary"]["oldestKey"] is None


@pytest.mark.parametrize("name", KEY_REPORTS)
def test_key_reports_bad_parameters_are_400(gw: InProcessGateway, name: str) -> None:
    for params in ({"namespace": ""}, {"since": "nope"}, {"bogus": "1"}):
        assert get(gw, f"/admin/{name}", **params).status_code == 400, (name, params)
    assert get(gw, f"/admin/{name}", group="no-such-group").status_code == 404, name  # as an unknown key is


def test_lifecycle_counts_events_and_lists_keys_at_risk(gw: InProcessGateway) -> None:
    before = report(gw, "/admin/lifecycle")
    space = ns()
    gone = new_key(gw, 10, namespace=space, name=f"gone-{space}")
    paused = new_key(gw, 10, namespace=space)
    new_key(gw, 0, namespace=space, name=f"empty-{space}")
    post(gw, "/keys/revoke", {"key": gone})
    post(gw, "/keys/suspend", {"key": paused})
    post(gw, "/keys/resume", {"key": paused})
    after = report(gw, "/admin/lifecycle", limit=10_000)
    delta = {k: after["events"][k] - before["events"][k] for k in after["events"]}
    assert delta == {"created": 3, "revoked": 1, "suspended": 1, "resumed": 1, "rotated": 0, "cloned": 0}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert after["trends"][-1]["date"] == today
    assert [t["date"] for t in after["trends"]] == sorted(t["date"] for t in after["trends"])
    assert after["averageLifetimeHours"] is not None and after["averageLifetimeHours"] >= 0
    risks = {(r["name"], r["risk"]) for r in after["atRisk"]}
    assert (f"empty-{space}", "zero_credits") in risks
    assert all(r["name"] != f"gone-{space}" for r in after["atRisk"])
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    empty = report(gw, "/admin/lifecycle", since=tomorrow)
    assert set(empty["events"].values()) == {0} and empty["trends"] == [] and empty["averageLifetimeHours"] is None
    assert get(gw, "/admin/lifecycle", format="csv").status_code == 200
    assert get(gw, "/admin/lifecycle", limit="0").status_code == 400


def test_security_findings_and_score(gw: InProcessGateway) -> None:
    space = ns()
    new_key(
        gw,
        10,
        namespace=space,
        name="tight",
        ipAllowlist=["10.0.0.1"],
        allowedTools=["echo"],
        spendingLimit=100,
        expiresIn=30 * 86400,
    )
    new_key(gw, 20_000, namespace=space, name="bare")
    out = report(gw, "/admin/security", namespace=space)
    found = {f["type"]: (f["severity"], f["keys"]) for f in out["findings"]}
    assert found == {
        "high_credit_balance": ("warning", ["bare"]),
        "no_ip_allowlist": ("warning", ["bare"]),
        "no_acl_restriction": ("info", ["bare"]),
        "no_expiry": ("info", ["bare"]),
        "no_quota": ("info", ["bare", "tight"]),
        "no_spending_limit": ("info", ["bare"]),
    }
    assert [f["severity"] for f in out["findings"]] == ["warning"] * 2 + ["info"] * 4
    assert out["summary"] == {"totalKeys": 2, "totalFindings": 7}
    assert out["score"] == 45  # 100 - (25 + 15 + 15 + 15 + 20) / 2 - 10
    warnings = report(gw, "/admin/security", namespace=space, severity="warning")
    assert [f["type"] for f in warnings["findings"]] == ["high_credit_balance", "no_ip_allowlist"]
    assert warnings["score"] == 45
    assert get(gw, "/admin/security", severity="high").status_code == 400


def test_compliance_summary_and_the_export_still_works(gw: InProcessGateway) -> None:
    space = ns()
    new_key(gw, 10, namespace=space, allowedTools=["echo"], expiresIn=86400)
    new_key(gw, 10, namespace=space, spendingLimit=5)
    out = report(gw, "/admin/compliance", namespace=space)
    assert out["keyGovernance"] == {"totalKeys": 2, "keysWithExpiry": 1, "keysWithoutExpiry": 1}
    assert out["accessControl"] == {
        "keysWithAcl": 1,
        "keysWithoutAcl": 1,
        "keysWithIpRestriction": 0,
        "keysWithoutIpRestriction": 2,
        "keysWithSpendingLimit": 1,
        "keysWithoutSpendingLimit": 1,
    }
    assert out["auditTrail"]["totalEvents"] > 0
    assert out["overallScore"] == round(25 * 0.5 + 25 * 0.5 + 0 + 15 * 0.5 + 15)
    assert len(out["recommendations"]) == 4
    export = get(gw, "/admin/compliance/export")
    assert export.status_code == 200, export.text
    assert get(gw, "/admin/compliance", limit="1").status_code == 400


def test_audit_summary(gw: InProcessGateway) -> None:
    before = report(gw, "/admin/audit-summary")
    created_before = {t["type"]: t["count"] for t in before["eventsByType"]}.get("key.created", 0)
    new_key(gw, 10)
    new_key(gw, 10)
    out = report(gw, "/admin/audit-summary", limit=2)
    # This module's gateway is shared, and its expiry scanner may publish key.expiry_warning events for
    # other tests' keys meanwhile: ours are counted by their type.
    by_type = {t["type"]: t["count"] for t in out["eventsByType"]}
    assert by_type["key.created"] == created_before + 2
    assert out["summary"]["totalEvents"] >= before["summary"]["totalEvents"] + 2
    assert out["summary"]["eventsLastHour"] >= 2 and out["summary"]["eventsLast24h"] >= 2
    counts = [t["count"] for t in out["eventsByType"]]
    assert counts == sorted(counts, reverse=True)
    assert len(out["recentEvents"]) == 2 and out["recentEvents"][0]["id"] > out["recentEvents"][1]["id"]
    recent = report(gw, "/admin/audit-summary", limit=50)["recentEvents"]
    created = [e for e in recent if e["type"] == "key.created"]
    assert created[0]["message"].startswith("Key created") and created[0]["id"] > created[1]["id"]
    assert out["topActors"][0]["count"] >= 2
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    empty = report(gw, "/admin/audit-summary", since=tomorrow)
    assert empty["summary"]["totalEvents"] == 0 and empty["eventsByType"] == [] and empty["recentEvents"] == []
    assert empty["summary"]["oldestEvent"] is None
    rows = list(csv.DictReader(io.StringIO(get(gw, "/admin/audit-summary", format="csv").text)))
    assert {"type", "count"} <= set(rows[0])
    assert get(gw, "/admin/audit-summary", limit="0").status_code == 400
