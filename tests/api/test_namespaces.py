"""GET /namespaces and the ?namespace= filters on /usage and /status."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND


def get(gw: InProcessGateway, path: str, **params: str) -> Any:
    return gw.client.get(path, params=params, headers=gw.admin())


def namespaces(gw: InProcessGateway) -> dict[str, dict[str, Any]]:
    body = get(gw, "/namespaces").json()
    assert body["count"] == len(body["namespaces"])
    return {row["namespace"]: row for row in body["namespaces"]}


def test_namespaces_lists_key_counts_credits_and_spending_per_namespace(gw: InProcessGateway) -> None:
    a1, a2 = gw.create_key(10, namespace="ns-list-a"), gw.create_key(5, namespace="ns-list-a")
    b = gw.create_key(7, namespace="ns-list-b")
    gw.create_key(1)  # no namespace: "default"
    gw.call_tool("add", {"a": 1, "b": 1}, a1)
    gw.call_tool("add", {"a": 1, "b": 1}, b)
    assert gw.client.post("/keys/revoke", json={"key": a2}, headers=gw.admin()).status_code == 200
    rows = namespaces(gw)
    assert rows["ns-list-a"] == {
        "namespace": "ns-list-a",
        "keyCount": 2,
        "activeKeys": 1,
        "totalCredits": 9,
        "totalSpent": 1,
        "totalCalls": 1,
    }
    assert rows["ns-list-b"]["totalCredits"] == 6 and rows["ns-list-b"]["totalSpent"] == 1
    names = list(rows)
    assert names == sorted(names) and "default" in names


def test_usage_filtered_by_namespace_holds_only_that_namespaces_events(gw: InProcessGateway) -> None:
    mine, other = gw.create_key(10, namespace="ns-usage"), gw.create_key(10, namespace="ns-usage-other")
    gw.call_tool("echo", {"text": "x"}, mine)
    gw.call_tool("echo", {"text": "x"}, mine)
    gw.call_tool("echo", {"text": "x"}, other)
    body = get(gw, "/usage", namespace="ns-usage").json()
    assert body["count"] == 2 and {e["namespace"] for e in body["events"]} == {"ns-usage"}
    assert get(gw, "/usage", namespace="ns-usage", limit="1").json()["count"] == 1
    rows = list(csv.DictReader(io.StringIO(get(gw, "/usage", namespace="ns-usage", format="csv").text)))
    assert len(rows) == 2 and {r["namespace"] for r in rows} == {"ns-usage"}
    assert get(gw, "/usage", namespace="ns-nobody").json() == {"count": 0, "events": []}


def test_status_filtered_by_namespace_scopes_keys_calls_and_denials(gw: InProcessGateway) -> None:
    raw = gw.create_key(1, namespace="ns-status")
    gw.create_key(100, namespace="ns-status-other")
    gw.call_tool("add", {"a": 1, "b": 1}, raw)
    gw.call_tool("add", {"a": 1, "b": 1}, raw)  # denied: no credits
    body = get(gw, "/status", namespace="ns-status").json()
    assert body["filteredNamespace"] == "ns-status"
    assert (body["totalKeys"], body["activeKeys"], body["totalCredits"], body["totalSpent"]) == (1, 1, 0, 1)
    assert body["perTool"] == {"add": {"calls": 2, "credits": 1, "denied": 1}}  # calls: every attempt
    assert body["denyReasons"] == {"insufficient_credits": 1}
    assert [n["namespace"] for n in body["namespaces"]] == ["ns-status"]
    everything = get(gw, "/status").json()
    assert "filteredNamespace" not in everything and everything["totalKeys"] > 1
    assert {"ns-status", "ns-status-other"} <= {n["namespace"] for n in everything["namespaces"]}


@pytest.mark.parametrize("path", ["/usage", "/status"])
@pytest.mark.parametrize("value", ["", "a b", "x" * 65, "ns/1", "ns;drop"])
def test_a_malformed_namespace_filter_is_a_400(gw: InProcessGateway, path: str, value: str) -> None:
    resp = get(gw, path, namespace=value)
    assert resp.status_code == 400 and resp.json()["error"].startswith("Invalid request")


def test_namespaces_need_the_admin_key(gw: InProcessGateway) -> None:
    assert gw.client.get("/namespaces").status_code == 401


def test_namespaces_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        raw = gw.create_key(3, namespace="tenant-1")
        gw.call_tool("echo", {"text": "x"}, raw)
        before = namespaces(gw)
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert namespaces(gw) == before and before["tenant-1"]["totalSpent"] == 1
        assert get(gw, "/usage", namespace="tenant-1").json()["count"] == 1
