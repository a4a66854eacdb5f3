"""Consumer reports (docs/analytics-consumers.md): insights, segmentation, lifetime value, retention,
activity. Each test works in a namespace of its own: the gateway is shared by the module's tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from paygate.store.rollups import CallFact
from tests.api.analytics.support import (
    assert_refused_unchanged,
    calls,
    csv_rows,
    get,
    key_hash,
    new_key,
    record,
    report,
)
from tests.inprocess import InProcessGateway

PATHS = (
    "/admin/consumer-insights",
    "/admin/consumer-segmentation",
    "/admin/consumer-lifetime-value",
    "/admin/consumer-retention",
    "/admin/consumer-activity",
)


def namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


def spend(gw: InProcessGateway, key: str, ns: str, *amounts: int, at: float | None = None) -> None:
    """Admitted calls of these credits, recorded (an hour ago unless `at`)."""
    ts = at if at is not None else time.time() - 3600
    record(gw, [CallFact(ts, key_hash(key), "search", ns, "", credits=c) for c in amounts])


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in rows]


def test_consumer_insights_ranks_spenders_and_callers(gw: InProcessGateway) -> None:
    ns = namespace()
    a = new_key(gw, 100, name="a-heavy", namespace=ns)
    b = new_key(gw, 100, name="b-chatty", namespace=ns)
    new_key(gw, 100, name="c-idle", namespace=ns)
    calls(gw, a, 2)  # 1 credit each, real calls
    spend(gw, a, ns, 10)
    spend(gw, b, ns, 1, 1, 1, 1)
    record(gw, [CallFact(time.time() - 60, key_hash(b), "other", ns, "rate_limited")])  # denied: not counted
    out = report(gw, "/admin/consumer-insights", namespace=ns)
    assert out["summary"] == {"totalConsumers": 3, "activeConsumers": 2, "totalCreditsSpent": 16, "totalCalls": 7}
    assert out["topSpenders"][0] == {
        "name": "a-heavy",
        "key": out["topSpenders"][0]["key"],
        "totalSpent": 12,
        "totalCalls": 3,
        "uniqueTools": 2,
    }
    assert names(out["topSpenders"]) == ["a-heavy", "b-chatty"]
    assert names(out["mostActive"]) == ["b-chatty", "a-heavy"]
    assert out["mostActive"][0]["uniqueTools"] == 1  # the denied tool is not one it used
    assert "…" in out["topSpenders"][0]["key"] and a not in str(out)
    assert names(report(gw, "/admin/consumer-insights", namespace=ns, limit=1)["topSpenders"]) == ["a-heavy"]


def test_key_and_group_filters(gw: InProcessGateway) -> None:
    ns = namespace()
    a = new_key(gw, 100, name="a", namespace=ns)
    b = new_key(gw, 100, name="b", namespace=ns)
    spend(gw, a, ns, 5)
    spend(gw, b, ns, 7)
    by_key = report(gw, "/admin/consumer-insights", key=a)
    assert by_key["summary"]["totalConsumers"] == 1 and by_key["summary"]["totalCreditsSpent"] == 5
    alias = f"al-{uuid.uuid4().hex[:6]}"
    assert gw.client.post("/keys/alias", json={"key": b, "alias": alias}, headers=gw.admin()).status_code == 200
    assert names(report(gw, "/admin/consumer-activity", key=alias)["consumers"]) == ["b"]
    group = gw.client.post("/groups", json={"name": f"g-{ns}"}, headers=gw.admin()).json()["id"]
    assert gw.client.post("/groups/assign", json={"groupId": group, "key": b}, headers=gw.admin()).status_code == 200
    for ref in (group, f"g-{ns}"):  # by id or by name
        grouped = report(gw, "/admin/consumer-activity", group=ref)
        assert names(grouped["consumers"]) == ["b"] and grouped["consumers"][0]["totalSpent"] == 7
    assert get(gw, "/admin/consumer-activity", key="pg_not_a_key").status_code == 404
    assert get(gw, "/admin/consumer-activity", group="no-such-group").status_code == 404


def test_consumer_segmentation(gw: InProcessGateway) -> None:
    ns = namespace()
    keys = {name: new_key(gw, 10, name=name, namespace=ns) for name in ("p", "r", "c", "d")}
    for name, n in (("p", 20), ("r", 5), ("c", 4)):
        spend(gw, keys[name], ns, *([2] * n))
    revoked = new_key(gw, 10, namespace=ns)
    assert gw.client.post("/keys/revoke", json={"key": revoked}, headers=gw.admin()).status_code == 200
    out = report(gw, "/admin/consumer-segmentation", namespace=ns)
    assert out["segments"] == [
        {"segment": "power", "count": 1, "totalCredits": 10, "totalSpent": 40, "avgCallsPerKey": 20.0},
        {"segment": "regular", "count": 1, "totalCredits": 10, "totalSpent": 10, "avgCallsPerKey": 5.0},
        {"segment": "casual", "count": 1, "totalCredits": 10, "totalSpent": 8, "avgCallsPerKey": 4.0},
        {"segment": "dormant", "count": 1, "totalCredits": 10, "totalSpent": 0, "avgCallsPerKey": 0.0},
    ]
    assert out["summary"] == {"totalConsumers": 4}  # the revoked key is not a consumer


def test_consumer_lifetime_value(gw: InProcessGateway) -> None:
    ns = namespace()
    for name, credits in (("high", [60, 40]), ("medium", [10]), ("low", [3, 3, 3])):
        spend(gw, new_key(gw, 0, name=name, namespace=ns), ns, *credits)
    new_key(gw, 0, name="zero", namespace=ns)
    out = report(gw, "/admin/consumer-lifetime-value", namespace=ns)
    assert [(c["name"], c["lifetimeValue"], c["tier"], c["totalCalls"]) for c in out["consumers"]] == [
        ("high", 100, "high", 2),
        ("medium", 10, "medium", 1),
        ("low", 9, "low", 3),
    ]
    assert out["consumers"][0]["avgSpendPerCall"] == 50.0 and out["consumers"][2]["toolsUsed"] == 1
    assert out["summary"] == {"totalConsumers": 4, "totalLifetimeValue": 119, "avgLifetimeValue": 30}


def test_consumer_retention(gw: InProcessGateway) -> None:
    ns = namespace()
    keys = [new_key(gw, 10, namespace=ns) for _ in range(3)]
    calls(gw, keys[0], 2)
    spend(gw, keys[1], ns, 4)
    out = report(gw, "/admin/consumer-retention", namespace=ns)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert out["cohorts"] == [{"period": today, "created": 3, "retained": 2, "retentionRate": 67, "avgSpend": 2}]
    assert out["summary"] == {"totalKeys": 3, "retainedKeys": 2, "overallRetentionRate": 67}


def test_consumer_activity(gw: InProcessGateway) -> None:
    ns = namespace()
    busy = new_key(gw, 50, name="busy", namespace=ns)
    new_key(gw, 20, name="quiet", namespace=ns)
    calls(gw, busy, 3)
    out = report(gw, "/admin/consumer-activity", namespace=ns)
    first, second = out["consumers"]
    assert first["name"] == "busy" and first["totalCalls"] == 3 and first["totalSpent"] == 3
    assert first["creditsRemaining"] == 47 and first["status"] == "active" and first["lastActive"] is not None
    assert second == {
        "name": "quiet",
        "key": second["key"],
        "totalCalls": 0,
        "deniedCalls": 0,
        "totalSpent": 0,
        "creditsRemaining": 20,
        "lastActive": None,
        "status": "inactive",
    }
    assert out["summary"] == {"totalConsumers": 2, "activeConsumers": 1, "inactiveConsumers": 1}


def test_the_window_counts_only_its_hours(gw: InProcessGateway) -> None:
    ns = namespace()
    key = new_key(gw, 10, name="old", namespace=ns)
    long_ago = time.time() - 30 * 86400
    spend(gw, key, ns, 5, at=long_ago)
    spend(gw, key, ns, 1)
    since = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(long_ago + 3600))
    recent = report(gw, "/admin/consumer-activity", namespace=ns, since=since)
    assert recent["consumers"][0]["totalSpent"] == 1 and recent["since"] is not None
    everything = report(gw, "/admin/consumer-activity", namespace=ns)
    assert everything["consumers"][0]["totalSpent"] == 6
    until = time.strftime("%Y-%m-%dT%H:59:59Z", time.gmtime(long_ago))
    assert report(gw, "/admin/consumer-lifetime-value", namespace=ns, until=until)["summary"]["totalLifetimeValue"] == 5


def test_empty_namespace_answers_zeros(gw: InProcessGateway) -> None:
    ns = namespace()
    assert report(gw, "/admin/consumer-insights", namespace=ns)["topSpenders"] == []
    assert report(gw, "/admin/consumer-lifetime-value", namespace=ns)["summary"] == {
        "totalConsumers": 0,
        "totalLifetimeValue": 0,
        "avgLifetimeValue": 0,
    }
    assert report(gw, "/admin/consumer-retention", namespace=ns)["summary"]["overallRetentionRate"] == 0
    assert all(s["count"] == 0 for s in report(gw, "/admin/consumer-segmentation", namespace=ns)["segments"])


@pytest.mark.parametrize("path", PATHS)
def test_bad_parameters_are_400(gw: InProcessGateway, path: str) -> None:
    assert_refused_unchanged(
        gw, path, ({"limit": "0"}, {"limit": "x"}, {"namespace": ""}, {"bogus": "1"}, {"since": "soon"})
    )


@pytest.mark.parametrize("path", PATHS)
def test_csv_export(gw: InProcessGateway, path: str) -> None:
    ns = namespace()
    key = new_key(gw, 10, name="csv-key", namespace=ns)
    spend(gw, key, ns, 3)
    rows = csv_rows(gw, path, namespace=ns)
    assert rows
    assert key not in str(rows)
