"""Consumer reports (docs/analytics-consumers.md): spend velocity, risk score, growth, key ranking. Each test
works in a namespace of its own: the gateway is shared by the module's tests."""

from __future__ import annotations

import time
import uuid

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
    "/admin/consumer-spend-velocity",
    "/admin/consumer-risk-score",
    "/admin/consumer-growth",
    "/admin/key-ranking",
)


def namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


def spend(gw: InProcessGateway, key: str, ns: str, *amounts: int) -> None:
    record(gw, [CallFact(time.time() - 60, key_hash(key), "search", ns, "", credits=c) for c in amounts])


def test_consumer_spend_velocity(gw: InProcessGateway) -> None:
    ns = namespace()
    fast = new_key(gw, 50, name="fast", namespace=ns)
    slow = new_key(gw, 90, name="slow", namespace=ns)
    new_key(gw, 100, name="idle", namespace=ns)
    spend(gw, fast, ns, 6, 4)
    spend(gw, slow, ns, 3)
    out = report(gw, "/admin/consumer-spend-velocity", namespace=ns)
    # The keys are minutes old: their rate is over one hour (the shortest span counted).
    assert [(c["name"], c["totalSpent"], c["creditsPerHour"], c["hoursUntilDepleted"]) for c in out["consumers"]] == [
        ("fast", 10, 10.0, 5.0),
        ("slow", 3, 3.0, 30.0),
        ("idle", 0, 0.0, None),
    ]
    assert out["consumers"][0]["creditsRemaining"] == 50
    assert out["summary"] == {"totalConsumers": 3, "fastestSpender": "fast"}
    assert report(gw, "/admin/consumer-spend-velocity", namespace=namespace())["summary"] == {
        "totalConsumers": 0,
        "fastestSpender": None,
    }


def test_consumer_risk_score(gw: InProcessGateway) -> None:
    ns = namespace()
    edge = new_key(gw, 4, name="edge", namespace=ns)
    some = new_key(gw, 10, name="some", namespace=ns)
    new_key(gw, 100, name="calm", namespace=ns)
    calls(gw, edge, 3)
    calls(gw, some, 3)
    out = report(gw, "/admin/consumer-risk-score", namespace=ns)
    assert [
        (c["name"], c["riskScore"], c["riskLevel"], c["creditsRemaining"], c["totalSpent"]) for c in out["consumers"]
    ] == [
        ("edge", 75, "critical", 1, 3),
        ("some", 30, "medium", 7, 3),
        ("calm", 0, "low", 100, 0),
    ]
    assert out["consumers"][0]["utilizationPercent"] == 75 and out["consumers"][0]["spentInRange"] == 3
    assert out["summary"] == {
        "totalConsumers": 3,
        "riskDistribution": {"low": 1, "medium": 1, "high": 0, "critical": 1},
    }


def test_consumer_growth(gw: InProcessGateway) -> None:
    ns = namespace()
    big = new_key(gw, 500, name="big", namespace=ns)
    new_key(gw, 20, name="small", namespace=ns)
    calls(gw, big, 2)
    out = report(gw, "/admin/consumer-growth", namespace=ns)
    first, second = out["consumers"]
    assert (first["name"], first["creditsAllocated"], first["totalSpent"], first["spendRate"]) == ("big", 500, 2, 2.0)
    assert second["name"] == "small" and second["creditsAllocated"] == 20 and second["spendRate"] == 0.0
    assert 0 <= first["ageHours"] < 1
    assert out["summary"] == {"totalConsumers": 2, "newConsumers24h": 2}


def test_key_ranking_sorts_by_each_metric(gw: InProcessGateway) -> None:
    ns = namespace()
    a = new_key(gw, 10, name="a", namespace=ns)
    b = new_key(gw, 900, name="b", namespace=ns)
    new_key(gw, 50, name="c", namespace=ns)
    spend(gw, a, ns, 30)
    spend(gw, b, ns, 1, 1, 1)
    path = "/admin/key-ranking"
    default = report(gw, path, namespace=ns)
    assert [(r["rank"], r["name"]) for r in default["rankings"]] == [(1, "a"), (2, "b"), (3, "c")]
    assert default["rankings"][0] == {
        "rank": 1,
        "name": "a",
        "key": default["rankings"][0]["key"],
        "totalSpent": 30,
        "totalCalls": 1,
        "creditsRemaining": 10,
    }
    assert default["summary"] == {"totalKeys": 3, "sortedBy": "totalSpent"}
    by_calls = report(gw, path, namespace=ns, sortBy="totalCalls")
    assert [r["name"] for r in by_calls["rankings"]] == ["b", "a", "c"]
    by_credits = report(gw, path, namespace=ns, sortBy="creditsRemaining", limit=2)
    assert [r["name"] for r in by_credits["rankings"]] == ["b", "c"]
    assert by_credits["summary"] == {"totalKeys": 3, "sortedBy": "creditsRemaining"}
    assert get(gw, path, sortBy="name").status_code == 400


@pytest.mark.parametrize("path", PATHS)
def test_bad_parameters_are_400(gw: InProcessGateway, path: str) -> None:
    assert_refused_unchanged(
        gw, path, ({"limit": "0"}, {"limit": "100000"}, {"namespace": ""}, {"bogus": "1"}, {"until": "x"})
    )


@pytest.mark.parametrize("path", PATHS)
def test_csv_export(gw: InProcessGateway, path: str) -> None:
    ns = namespace()
    key = new_key(gw, 10, name="csv-key", namespace=ns)
    spend(gw, key, ns, 3)
    rows = csv_rows(gw, path, namespace=ns)
    assert [r["name"] for r in rows] == ["csv-key"]
    assert key not in str(rows)
