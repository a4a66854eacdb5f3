"""Namespace reports (namespace-usage, -revenue, -activity, -comparison): key state by the namespace a key is in
now, traffic by the namespace each call was made in. Each test works in namespaces of its own."""

from __future__ import annotations

import time
import uuid
from typing import Any

from paygate.store.rollups import CallFact
from tests.api.analytics.support import calls, key_hash, new_key, record, report
from tests.inprocess import InProcessGateway


def fresh_namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


def rows(answer: dict[str, Any], *names: str) -> list[dict[str, Any]]:
    """The answer's rows of these namespaces, in the answer's order."""
    return [r for r in answer["namespaces"] if r["namespace"] in names]


def revoke(gw: InProcessGateway, key: str) -> None:
    assert gw.client.post("/keys/revoke", json={"key": key}, headers=gw.admin()).status_code == 200


def test_namespace_usage_after_real_calls(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    alice, bob = new_key(gw, 100, namespace=ns), new_key(gw, 50, namespace=ns)
    calls(gw, alice, 3)
    calls(gw, bob, 1)
    calls(gw, new_key(gw, 0, namespace=ns), 2)  # denied
    out = report(gw, "/admin/namespace-usage", namespace=ns)
    assert out["summary"] == {"totalNamespaces": 1}
    assert out["namespaces"] == [
        {
            "namespace": ns,
            "keyCount": 3,
            "totalAllocated": 150,
            "totalSpent": 4,
            "totalRemaining": 146,
            "utilizationPct": round(400 / 150, 2),
            "totalCalls": 4,
            "deniedCalls": 2,
            "creditsCharged": 4,
        }
    ]


def test_key_state_follows_the_key_and_traffic_stays_where_it_was_made(gw: InProcessGateway) -> None:
    old, new = fresh_namespace(), fresh_namespace()
    key = new_key(gw, 100, namespace=new)
    calls(gw, key, 2)  # made in `new`
    # calls the key made while it was in `old` (written as the feed wrote them then)
    record(gw, [CallFact(time.time(), key_hash(key), "echo", old, "", credits=3)] * 2)
    usage = report(gw, "/admin/namespace-usage")
    assert [
        (r["namespace"], r["keyCount"], r["totalSpent"], r["totalCalls"], r["creditsCharged"])
        for r in rows(usage, old, new)
    ] == [
        (new, 1, 2, 2, 2),  # key state (spent to date as the key record has it: the recorded calls charged nothing)
        (old, 0, 0, 2, 6),
    ]
    revenue = report(gw, "/admin/namespace-revenue")
    assert [(r["namespace"], r["totalSpent"], r["keyCount"]) for r in rows(revenue, old, new)] == [
        (old, 6, 0),
        (new, 2, 1),
    ]


def test_namespace_revenue_shares_and_revoked_keys(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    payer, gone = new_key(gw, 100, namespace=ns), new_key(gw, 100, namespace=ns)
    calls(gw, payer, 3)
    calls(gw, gone, 1)
    revoke(gw, gone)  # its revenue was earned: it stays; it is no longer a key of the namespace
    out = report(gw, "/admin/namespace-revenue", namespace=ns)
    assert out["namespaces"] == [
        {"namespace": ns, "totalSpent": 4, "totalCalls": 4, "keyCount": 1, "percentage": 100.0}
    ]
    assert out["summary"] == {"totalNamespaces": 1, "totalRevenue": 4, "topNamespace": ns}
    whole = report(gw, "/admin/namespace-revenue")
    assert whole["summary"]["totalRevenue"] == sum(r["totalSpent"] for r in whole["namespaces"])
    assert abs(sum(r["percentage"] for r in whole["namespaces"]) - 100) < 0.01 * len(whole["namespaces"])
    spends = [r["totalSpent"] for r in whole["namespaces"]]
    assert spends == sorted(spends, reverse=True)


def test_namespace_revenue_over_a_range(gw: InProcessGateway) -> None:
    a, b = fresh_namespace(), fresh_namespace()
    k = key_hash(new_key(gw, 10, namespace=a))
    then = time.time() - 700 * 86400
    record(gw, [CallFact(then, k, "echo", a, "", credits=3), CallFact(then, k, "echo", b, "", credits=1)])
    record(gw, [CallFact(then + 86400, k, "echo", b, "", credits=50)])  # a day later: outside
    day = time.strftime("%Y-%m-%d", time.gmtime(then))
    out = report(gw, "/admin/namespace-revenue", since=day, until=day + "T23:59:59")
    assert rows(out, a, b) == [
        {"namespace": a, "totalSpent": 3, "totalCalls": 1, "keyCount": 1, "percentage": 75.0},
        {"namespace": b, "totalSpent": 1, "totalCalls": 1, "keyCount": 0, "percentage": 25.0},
    ]
    assert out["summary"]["totalRevenue"] == 4 and out["summary"]["topNamespace"] == a


def test_namespace_activity(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    busy, idle = new_key(gw, 40, namespace=ns), new_key(gw, 60, namespace=ns)
    calls(gw, busy, 5)
    out = report(gw, "/admin/namespace-activity", namespace=ns)
    assert out["namespaces"] == [
        {"namespace": ns, "keyCount": 2, "totalSpent": 5, "totalCalls": 5, "creditsRemaining": 95, "activeKeys": 1}
    ]
    assert out["summary"] == {"totalNamespaces": 1, "topNamespace": ns}
    revoke(gw, idle)
    again = report(gw, "/admin/namespace-activity", namespace=ns)["namespaces"][0]
    assert (again["keyCount"], again["creditsRemaining"]) == (1, 35)
    quiet = fresh_namespace()
    new_key(gw, 5, namespace=quiet)
    out = report(gw, "/admin/namespace-activity", namespace=quiet)
    assert out["summary"] == {"totalNamespaces": 1, "topNamespace": None}  # nothing spent: no top


def test_namespace_comparison_sorts_by_allocation(gw: InProcessGateway) -> None:
    small, big = fresh_namespace(), fresh_namespace()
    calls(gw, new_key(gw, 20, namespace=small), 10)
    calls(gw, new_key(gw, 300, namespace=big), 1)
    new_key(gw, 200, namespace=big)
    out = report(gw, "/admin/namespace-comparison")
    assert rows(out, small, big) == [
        {
            "namespace": big,
            "keyCount": 2,
            "totalAllocated": 500,
            "totalSpent": 1,
            "totalCalls": 1,
            "creditsRemaining": 499,
            "utilizationPercent": 0.2,
        },
        {
            "namespace": small,
            "keyCount": 1,
            "totalAllocated": 20,
            "totalSpent": 10,
            "totalCalls": 10,
            "creditsRemaining": 10,
            "utilizationPercent": 50.0,
        },
    ]
    allocations = [r["totalAllocated"] for r in out["namespaces"]]
    assert allocations == sorted(allocations, reverse=True)
    assert out["summary"]["leader"] == out["namespaces"][0]["namespace"]
    assert out["summary"]["totalNamespaces"] == len(out["namespaces"])
    limited = report(gw, "/admin/namespace-comparison", limit=1)
    assert len(limited["namespaces"]) == 1 and limited["summary"]["totalNamespaces"] == len(out["namespaces"])
