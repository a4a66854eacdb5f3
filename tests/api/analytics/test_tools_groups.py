"""Group reports (group-performance, -revenue, -activity): groups made through the /groups endpoints, keys
assigned to them, calls made through /mcp. A key's calls count for the group it is in now."""

from __future__ import annotations

import time
import uuid
from typing import Any

from paygate.store.rollups import CallFact
from tests.api.analytics.support import calls, get, key_hash, new_key, record, report
from tests.inprocess import InProcessGateway


def make_group(gw: InProcessGateway, **fields: Any) -> dict[str, Any]:
    body = {"name": f"g-{uuid.uuid4().hex[:8]}", **fields}
    resp = gw.client.post("/groups", json=body, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def assign(gw: InProcessGateway, group: dict[str, Any], key: str) -> None:
    resp = gw.client.post("/groups/assign", json={"groupId": group["id"], "key": key}, headers=gw.admin())
    assert resp.status_code == 200, resp.text


def member(gw: InProcessGateway, group: dict[str, Any], credits: int) -> str:
    key = new_key(gw, credits)
    assign(gw, group, key)
    return key


def test_group_performance(gw: InProcessGateway) -> None:
    before = report(gw, "/admin/group-performance")["summary"]
    group = make_group(gw, description="the team", allowedTools=["echo", "add"], rateLimitPerMin=60)
    a, b = member(gw, group, 100), member(gw, group, 50)
    calls(gw, a, 4)
    calls(gw, b, 1)
    calls(gw, b, 1, tool="fail")  # not an allowed tool of the group: denied
    new_key(gw, 10)  # ungrouped
    out = report(gw, "/admin/group-performance", group=group["id"])
    assert out["groups"] == [
        {
            "groupId": group["id"],
            "groupName": group["name"],
            "description": "the team",
            "keyCount": 2,
            "totalAllocated": 150,
            "totalSpent": 5,
            "totalRemaining": 145,
            "totalCalls": 5,
            "deniedCalls": 1,
            "creditsCharged": 5,
            "utilizationPct": round(500 / 150, 2),
            "policy": {"allowedTools": ["echo", "add"], "deniedTools": [], "rateLimitPerMin": 60},
        }
    ]
    assert out["summary"]["totalGroups"] == 1
    assert out["summary"]["ungroupedKeys"] == before["ungroupedKeys"] + 1
    by_name = report(gw, "/admin/group-performance", group=group["name"].upper())
    assert by_name["groups"] == out["groups"]
    whole = report(gw, "/admin/group-performance")
    assert whole["summary"]["totalGroups"] == before["totalGroups"] + 1 == len(whole["groups"])
    spent = [g["totalSpent"] for g in whole["groups"]]
    assert spent == sorted(spent, reverse=True)


def test_an_unknown_group_is_404(gw: InProcessGateway) -> None:
    for name in ("group-performance", "group-revenue", "group-activity"):
        for wanted in ("grp_" + "f" * 24, "no-such-group"):
            assert get(gw, f"/admin/{name}", group=wanted).status_code == 404


def test_a_key_that_moves_brings_its_calls_to_its_new_group(gw: InProcessGateway) -> None:
    first, second = make_group(gw), make_group(gw)
    key = member(gw, first, 100)
    calls(gw, key, 3)
    assert report(gw, "/admin/group-revenue", group=first["id"])["groups"][0]["totalSpent"] == 3
    assign(gw, second, key)  # moves it
    moved = report(gw, "/admin/group-revenue", group=second["id"])["groups"]
    assert moved == [
        {
            "group": second["name"],
            "groupId": second["id"],
            "totalSpent": 3,
            "totalCalls": 3,
            "keyCount": 1,
            "percentage": 100.0,
        }
    ]
    left = report(gw, "/admin/group-revenue", group=first["id"])
    assert left["groups"][0]["totalSpent"] == 0 and left["summary"]["topGroup"] is None


def test_group_revenue_with_the_ungrouped_keys(gw: InProcessGateway) -> None:
    group = make_group(gw)
    payer = member(gw, group, 100)
    loose = new_key(gw, 100)
    then = time.time() - 800 * 86400  # a range of its own
    record(gw, [CallFact(then, key_hash(payer), "echo", "default", "", credits=6)])
    record(gw, [CallFact(then, key_hash(loose), "echo", "default", "", credits=2)])
    hour = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(then))
    out = report(gw, "/admin/group-revenue", since=hour, until=hour)
    rows = {r["group"]: r for r in out["groups"]}
    assert rows[group["name"]] == {
        "group": group["name"],
        "groupId": group["id"],
        "totalSpent": 6,
        "totalCalls": 1,
        "keyCount": 1,
        "percentage": 75.0,
    }
    assert (rows["ungrouped"]["groupId"], rows["ungrouped"]["totalSpent"], rows["ungrouped"]["percentage"]) == (
        None,
        2,
        25.0,
    )
    assert out["summary"]["totalRevenue"] == 8 and out["summary"]["topGroup"] == group["name"]
    assert out["summary"]["totalGroups"] == len(out["groups"])
    assert out["groups"][0]["group"] == group["name"]


def test_group_activity(gw: InProcessGateway) -> None:
    group = make_group(gw)
    busy, idle, gone = member(gw, group, 30), member(gw, group, 70), member(gw, group, 20)
    calls(gw, busy, 2)
    calls(gw, gone, 1)
    assert gw.client.post("/keys/revoke", json={"key": gone}, headers=gw.admin()).status_code == 200
    out = report(gw, "/admin/group-activity", group=group["id"])
    assert out["groups"] == [
        {
            "group": group["name"],
            "groupId": group["id"],
            "keyCount": 2,  # members that can call
            "totalSpent": 3,  # every member's calls of the range, the revoked one's included
            "totalCalls": 3,
            "creditsRemaining": 98,
            "activeKeys": 2,
        }
    ]
    assert out["summary"] == {"totalGroups": 1, "topGroup": group["name"]}
    assert idle
    limited = report(gw, "/admin/group-activity", limit=1)
    assert len(limited["groups"]) == 1 and limited["summary"]["totalGroups"] >= 2
