"""Tool reports (tool-adoption, tool-popularity, tool-correlation) after real calls and recorded history, and
what every report of the family shares: CSV, bad parameters (400, nothing changed), empty data.

The gateway is shared by the module: each test works in a namespace of its own."""

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

FAMILY = (
    "tool-adoption",
    "tool-popularity",
    "tool-correlation",
    "namespace-usage",
    "namespace-revenue",
    "namespace-activity",
    "namespace-comparison",
    "group-performance",
    "group-revenue",
    "group-activity",
)


def table_of(name: str, answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's main list (the one CSV exports)."""
    family = name.split("-")[0]
    field = (
        "pairs" if name == "tool-correlation" else {"tool": "tools", "namespace": "namespaces"}.get(family, "groups")
    )
    return list(answer[field])


def fresh_namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


def this_hour() -> str:
    return time.strftime("%Y-%m-%dT%H:00:00.000Z", time.gmtime())


def by_tool(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["tool"]: row for row in answer["tools"]}


def test_tool_adoption_counts_the_keys_that_used_each_tool(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    alice, bob, idle = new_key(gw, 100, namespace=ns), new_key(gw, 100, namespace=ns), new_key(gw, 5, namespace=ns)
    calls(gw, alice, 2)
    gw.call_tool("add", {"a": 1, "b": 2}, alice)
    calls(gw, bob, 1)
    broke = new_key(gw, 0, namespace=ns)
    calls(gw, broke, 1, tool="add")  # denied (no credits): not a use
    out = report(gw, "/admin/tool-adoption", namespace=ns)
    tools = by_tool(out)
    hour = this_hour()
    assert tools["echo"] == {
        "tool": "echo",
        "uniqueConsumers": 2,
        "adoptionRate": 50.0,  # 2 of the namespace's 4 keys that can call
        "totalCalls": 3,
        "firstSeen": hour,
        "lastSeen": hour,
    }
    assert tools["add"]["uniqueConsumers"] == 1 and tools["add"]["adoptionRate"] == 25.0
    assert tools["add"]["totalCalls"] == 1
    # the backend's other tools are listed, unused
    assert tools["crash"] == {
        "tool": "crash",
        "uniqueConsumers": 0,
        "adoptionRate": 0.0,
        "totalCalls": 0,
        "firstSeen": None,
        "lastSeen": None,
    }
    assert [r["tool"] for r in out["tools"][:2]] == ["echo", "add"]
    assert out["summary"]["usedTools"] == 2 and out["summary"]["activeKeys"] == 4
    assert out["summary"]["totalTools"] == len(out["tools"]) >= 17
    assert out["summary"]["unusedTools"] == out["summary"]["totalTools"] - 2
    # a revoked adopter still counts as a consumer, not in the rate over keys that can call
    assert gw.client.post("/keys/revoke", json={"key": bob}, headers=gw.admin()).status_code == 200
    echo = by_tool(report(gw, "/admin/tool-adoption", namespace=ns))["echo"]
    assert echo["uniqueConsumers"] == 2 and echo["adoptionRate"] == round(100 / 3, 2)
    assert idle


def test_tool_adoption_first_and_last_seen_come_from_the_range(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    k = key_hash(new_key(gw, 10, namespace=ns))
    base = (int(time.time()) // 86400 - 500) * 86400  # midnight, 500 days ago
    record(
        gw,
        [
            CallFact(base + 3 * 3600 + 5, k, "t1", ns, "", credits=1),
            CallFact(base + 86400 + 7 * 3600, k, "t1", ns, "", credits=1),
            CallFact(base + 2 * 86400 + 9 * 3600, k, "t1", ns, "", credits=1),
            CallFact(base + 2 * 86400 + 10 * 3600, k, "t1", ns, "rate_limited"),  # denied: not seen
        ],
    )
    iso = lambda ts: time.strftime("%Y-%m-%dT%H:00:00.000Z", time.gmtime(ts))  # noqa: E731
    whole = by_tool(report(gw, "/admin/tool-adoption", namespace=ns))["t1"]
    assert (whole["firstSeen"], whole["lastSeen"], whole["totalCalls"]) == (
        iso(base + 3 * 3600),
        iso(base + 2 * 86400 + 9 * 3600),
        3,
    )
    part = by_tool(
        report(gw, "/admin/tool-adoption", namespace=ns, since=iso(base + 4 * 3600), until=iso(base + 86400 + 8 * 3600))
    )["t1"]
    assert (part["firstSeen"], part["lastSeen"], part["totalCalls"]) == (iso(base + 86400 + 7 * 3600),) * 2 + (1,)


def test_tool_popularity_ranks_admitted_calls(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    alice, bob = new_key(gw, 100, namespace=ns), new_key(gw, 100, namespace=ns)
    calls(gw, alice, 3)
    calls(gw, bob, 2)
    gw.call_tool("fail", {}, alice)  # admitted, the backend fails
    calls(gw, new_key(gw, 0, namespace=ns), 4)  # denied: not counted
    out = report(gw, "/admin/tool-popularity", namespace=ns)
    assert out["tools"] == [
        {
            "tool": "echo",
            "totalCalls": 5,
            "totalCredits": 5,
            "uniqueConsumers": 2,
            "percentage": 83.33,
            "failedCalls": 0,
        },
        {
            "tool": "fail",
            "totalCalls": 1,
            "totalCredits": 1,
            "uniqueConsumers": 1,
            "percentage": 16.67,
            "failedCalls": 1,
        },
    ]
    assert out["summary"] == {"totalTools": 2, "totalCalls": 6, "totalCredits": 6, "mostPopular": "echo"}
    limited = report(gw, "/admin/tool-popularity", namespace=ns, limit=1)
    assert [r["tool"] for r in limited["tools"]] == ["echo"] and limited["summary"]["totalTools"] == 2


def test_tool_popularity_counts_the_range_only(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    k = key_hash(new_key(gw, 10, namespace=ns))
    long_ago = time.time() - 600 * 86400
    record(
        gw, [CallFact(long_ago, k, "old", ns, "", credits=4), CallFact(long_ago + 7200, k, "older", ns, "", credits=2)]
    )
    hour = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(long_ago))
    out = report(gw, "/admin/tool-popularity", namespace=ns, since=hour, until=hour)
    assert out["tools"] == [
        {"tool": "old", "totalCalls": 1, "totalCredits": 4, "uniqueConsumers": 1, "percentage": 100.0, "failedCalls": 0}
    ]
    assert out["since"] == hour.replace(":00Z", ":00.000Z")


def test_tool_correlation_pairs_the_tools_keys_used_together(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    a, b, c = (new_key(gw, 100, namespace=ns) for _ in range(3))
    for key in (a, b):
        calls(gw, key, 1)
        gw.call_tool("add", {"a": 1, "b": 1}, key)
    calls(gw, c, 1)
    gw.call_tool("fail", {}, a)
    out = report(gw, "/admin/tool-correlation", namespace=ns)
    assert out["pairs"] == [
        {"toolA": "add", "toolB": "echo", "sharedConsumers": 2, "strength": 66.67, "consumersA": 2, "consumersB": 3},
        {"toolA": "add", "toolB": "fail", "sharedConsumers": 1, "strength": 33.33, "consumersA": 2, "consumersB": 1},
        {"toolA": "echo", "toolB": "fail", "sharedConsumers": 1, "strength": 33.33, "consumersA": 3, "consumersB": 1},
    ]
    assert out["summary"] == {"totalPairs": 3, "totalConsumers": 3, "totalTools": 3}
    assert len(report(gw, "/admin/tool-correlation", namespace=ns, limit=2)["pairs"]) == 2


@pytest.mark.parametrize("name", FAMILY)
def test_an_empty_scope_is_a_valid_answer(gw: InProcessGateway, name: str) -> None:
    scope = {"group": "grp_" + "0" * 24} if name.startswith("group-") else {"namespace": fresh_namespace()}
    if name.startswith("group-"):
        assert get(gw, f"/admin/{name}", **scope).status_code == 404  # no such group
        out = report(gw, f"/admin/{name}", since="2001-01-01", until="2001-01-01")
    else:
        out = report(gw, f"/admin/{name}", **scope)
    table = table_of(name, out)
    if name == "tool-adoption":
        assert all(r["uniqueConsumers"] == 0 and r["firstSeen"] is None for r in table)
    elif name.startswith("group-"):
        assert all(r["totalCalls"] == 0 for r in table)
    else:
        assert table == []
    assert "generatedAt" in out


@pytest.mark.parametrize("name", FAMILY)
def test_csv_exports_the_main_list(gw: InProcessGateway, name: str) -> None:
    ns = fresh_namespace()
    first, second = new_key(gw, 10, namespace=ns), new_key(gw, 10, namespace=ns)
    calls(gw, first, 2)
    gw.call_tool("add", {"a": 1, "b": 1}, first)
    resp = gw.client.post("/groups", json={"name": f"csv-{ns}"}, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    body = {"groupId": resp.json()["id"], "key": second}
    assert gw.client.post("/groups/assign", json=body, headers=gw.admin()).status_code == 200
    resp = get(gw, f"/admin/{name}", format="csv")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    expected = report(gw, f"/admin/{name}")
    table = table_of(name, expected)
    assert len(rows) == len(table) > 0
    assert set(rows[0]) >= {c for c, v in table[0].items() if not isinstance(v, dict)}


BAD: tuple[dict[str, Any], ...] = (
    {"limit": "0"},
    {"limit": "1001"},
    {"limit": "many"},
    {"bogus": "1"},
    {"since": "yesterday"},
    {"format": "xml"},
)


@pytest.mark.parametrize("name", FAMILY)
def test_bad_parameters_are_400_and_change_nothing(gw: InProcessGateway, name: str) -> None:
    path = f"/admin/{name}"
    before = report(gw, path)
    own = {"namespace": ""} if not name.startswith("group-") else {"group": ""}
    foreign = {"group": "x"} if not name.startswith("group-") else {"namespace": "x"}
    for params in (*BAD, own, foreign):
        resp = get(gw, path, **params)
        assert resp.status_code == 400, (name, params, resp.text)
    after = report(gw, path)
    assert {k: v for k, v in after.items() if k != "generatedAt"} == {
        k: v for k, v in before.items() if k != "generatedAt"
    }


@pytest.mark.parametrize("name", FAMILY)
def test_needs_an_admin_key(gw: InProcessGateway, name: str) -> None:
    assert gw.client.get(f"/admin/{name}").status_code == 401
