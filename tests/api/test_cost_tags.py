"""Cost tags (docs/money-rules.md#cost-tags): X-Cost-Tags attributed to each call's final cost, reports by
tag (grouped, cross-tabulated, CSV), required tags per key and the limits, refused before any charge;
settings and attribution across a restart; roles, audit, metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.backup_support import backup, restore
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config

DEFAULTS = {
    "enabled": False,
    "allowedTags": [],
    "maxHeaderBytes": 1024,
    "maxTagsPerRequest": 10,
    "maxValueLength": 64,
    "maxCardinality": 1000,
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = write_config(tmp_path_factory.mktemp("cost-tags"), {})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def _defaults(gw: InProcessGateway) -> Iterator[None]:
    yield
    _set(gw, **DEFAULTS)  # (a test that sets a key's required tags removes them itself)


def _set(gw: InProcessGateway, **fields: Any) -> dict[str, Any]:
    resp = gw.client.post("/admin/cost-tags", json=fields, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/cost-tags", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _call(gw: InProcessGateway, key: str, tags: Any = None, tool: str = "echo") -> httpx.Response:
    headers = {} if tags is None else {"X-Cost-Tags": tags if isinstance(tags, str) else json.dumps(tags)}
    args = {"text": "hi"} if tool == "echo" else {"a": 1, "b": 2}
    return gw.rpc("tools/call", {"name": tool, "arguments": args}, key=key, headers=headers)


def _report(gw: InProcessGateway, group_by: str, **params: str) -> httpx.Response:
    return gw.client.get("/admin/cost-tags/report", params={"groupBy": group_by, **params}, headers=gw.admin())


def test_off_by_default_and_nothing_on_the_hot_path(gw: InProcessGateway) -> None:
    view = _view(gw)
    assert {k: view[k] for k in DEFAULTS} == DEFAULTS and view["active"] is False
    assert gw.rt is not None
    assert not any(s.name == "cost_tags" for s in gw.rt.dispatcher.traffic.calls_on)
    key = gw.create_key(10)
    assert "result" in _call(gw, key, "not json at all").json()  # ignored while off


def test_tags_are_attributed_and_reported_by_any_dimension(gw: InProcessGateway) -> None:
    _set(gw, enabled=True)
    key = gw.create_key(50)
    for tags in (
        {"team": "t-search", "project": "p1"},
        {"team": "t-search", "project": "p2"},
        {"team": "t-search", "project": "p2"},
        {"team": "t-ads", "project": "p1"},
    ):
        assert "result" in _call(gw, key, tags).json()
    assert "result" in _call(gw, key).json()  # untagged: not attributed
    by_team = _report(gw, "team").json()
    rows = {r["team"]: r for r in by_team["rows"]}
    assert rows["t-search"]["calls"] == 3 and rows["t-search"]["credits"] == 3
    assert rows["t-ads"]["calls"] == 1
    cross = _report(gw, "team,project").json()["crossTab"]
    search, ads = cross["rows"].index("t-search"), cross["rows"].index("t-ads")
    p1, p2 = cross["columns"].index("p1"), cross["columns"].index("p2")
    assert cross["credits"][search][p2] == 2 and cross["credits"][search][p1] == 1
    assert cross["calls"][ads][p2] == 0
    csv = _report(gw, "team", format="csv")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0] == "team,calls,credits" and "t-search,3,3" in lines
    assert gw.balance(key) == 45


def test_a_refunded_call_is_attributed_at_its_final_cost(gw: InProcessGateway) -> None:
    _set(gw, enabled=True)
    key = gw.create_key(10)
    reply = gw.rpc(
        "tools/call", {"name": "fail", "arguments": {}}, key=key, headers={"X-Cost-Tags": '{"team": "t-refund"}'}
    ).json()
    assert "error" in reply or reply["result"].get("isError")
    rows = _report(gw, "team").json()["rows"]
    row = next(r for r in rows if r["team"] == "t-refund")
    assert row["calls"] == 1 and row["credits"] == 10 - gw.balance(key)


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("not json", "JSON object"),
        ("[1, 2]", "JSON object"),
        ('{"team": 5}', "printable string"),
        ('{"bad name": "x"}', "tag name"),
        ('{"team": ""}', "printable string"),
        (json.dumps({f"t{i}": "v" for i in range(11)}), "at most 10"),
        (json.dumps({"team": "x" * 65}), "printable string"),
    ],
)
def test_a_bad_header_is_refused_before_any_charge(gw: InProcessGateway, header: str, why: str) -> None:
    _set(gw, enabled=True)
    key = gw.create_key(10)
    error = _call(gw, key, header).json()["error"]
    assert error["code"] == -32602 and error["data"]["reason"] == "invalid_cost_tags" and why in error["message"]
    assert error["data"]["httpStatus"] == 400
    assert gw.balance(key) == 10


def test_allowed_names_header_size_and_cardinality(gw: InProcessGateway) -> None:
    _set(gw, enabled=True, allowedTags=["team", "env"], maxCardinality=2, maxHeaderBytes=64)
    key = gw.create_key(10)
    assert "not allowed" in _call(gw, key, {"owner": "x"}).json()["error"]["message"]
    assert "bytes" in _call(gw, key, {"team": "x" * 60}).json()["error"]["message"]
    assert "result" in _call(gw, key, {"env": "card-1"}).json()
    assert "result" in _call(gw, key, {"env": "card-2"}).json()
    assert "result" in _call(gw, key, {"env": "card-1"}).json()  # a value seen before is fine
    error = _call(gw, key, {"env": "card-3"}).json()["error"]
    assert error["data"]["reason"] == "invalid_cost_tags" and "maxCardinality" in error["message"]
    assert gw.balance(key) == 7
    assert _view(gw)["tags"]["env"] == 2


def test_required_tags_per_key(gw: InProcessGateway) -> None:
    a, b = gw.create_key(10), gw.create_key(10)
    view = _set(gw, key=a, requiredTags=["team", "project"])
    assert view["active"] is True  # required tags switch the check on, attribution or not
    assert [r["tags"] for r in view["requiredTags"]] == [["project", "team"]]
    error = _call(gw, a, {"team": "x"}).json()["error"]
    assert error["code"] == -32602 and error["data"]["reason"] == "cost_tags_required"
    assert "project" in error["message"]
    assert gw.balance(a) == 10
    batch = [{"name": "echo", "arguments": {"text": "x"}}]
    assert gw.rpc("tools/call_batch", {"calls": batch}, key=a).json()["error"]["data"]["reason"] == (
        "cost_tags_required"
    )  # the check also guards batches
    assert "result" in _call(gw, a, {"team": "x", "project": "y"}).json()
    assert "result" in _call(gw, b).json()  # another key has no requirement
    resp = gw.client.delete("/admin/cost-tags", params={"key": a}, headers=gw.admin())
    assert resp.status_code == 200 and resp.json()["requiredTags"] == []
    assert "result" in _call(gw, a).json()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"maxCardinality": 0},
        {"maxHeaderBytes": 10**6},
        {"enabled": "yes"},
        {"allowedTags": ["bad name"]},
        {"requiredTags": ["team"]},
        {"madeUp": 1},
    ],
)
def test_invalid_settings_are_refused_with_400_and_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = _view(gw)
    resp = gw.client.post("/admin/cost-tags", json=body, headers=gw.admin())
    assert resp.status_code == 400, resp.text
    after = _view(gw)
    assert {k: after[k] for k in DEFAULTS} == {k: before[k] for k in DEFAULTS}


def test_bad_report_queries_are_400(gw: InProcessGateway) -> None:
    assert _report(gw, "a,b,c,d").status_code == 400
    assert _report(gw, "team,team").status_code == 400
    assert _report(gw, "team", since="yesterday").status_code == 400
    assert _report(gw, "team", since="2026-02-02", until="2026-01-01").status_code == 400
    assert _report(gw, "team", format="xml").status_code == 400


def test_roles_audit_and_metrics(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/keys", json={"name": "v", "role": "viewer"}, headers=gw.admin())
    viewer = {"X-Admin-Key": resp.json()["key"]}
    assert gw.client.get("/admin/cost-tags", headers=viewer).status_code == 200
    assert gw.client.get("/admin/cost-tags/report", params={"groupBy": "t"}, headers=viewer).status_code == 200
    assert gw.client.post("/admin/cost-tags", json={"enabled": True}, headers=viewer).status_code == 403
    assert gw.client.get("/admin/cost-tags").status_code == 401
    _set(gw, maxCardinality=77)
    event = gw.events("cost_tags.updated")[-1]
    assert event["data"]["changed"] == ["maxCardinality"]
    text = gw.client.get("/metrics").text
    assert "paygate_cost_tagged_calls_total" in text and "paygate_cost_tag_refusals_total" in text


def test_settings_and_attribution_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", write_config(tmp_path, {}))
    admin = "admin-key-for-cost-tag-tests"
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as first:
        key = first.create_key(10)
        _set(first, enabled=True, maxCardinality=1, key=key, requiredTags=["team"])
        assert "result" in _call(first, key, {"team": "persist"}).json()
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as second:
        view = _view(second)
        assert view["enabled"] is True and view["maxCardinality"] == 1 and view["tags"] == {"team": 1}
        assert _call(second, key).json()["error"]["data"]["reason"] == "cost_tags_required"
        error = _call(second, key, {"team": "other"}).json()["error"]  # the value seen before the restart counts
        assert "maxCardinality" in error["message"]
        rows = _report(second, "team").json()["rows"]
        assert rows == [{"team": "persist", "calls": 1, "credits": 1}]


def test_a_backup_with_attribution_restores(gw: InProcessGateway) -> None:
    """The stored attribution is a document kind a restore knows how to check (compose/doc_checks.py)."""
    _set(gw, enabled=True)
    key = gw.create_key(10)
    assert "result" in _call(gw, key, {"team": "t-backup"}).json()
    assert _report(gw, "team").status_code == 200  # written to the store
    snapshot = backup(gw)
    assert "cost_tags.day" in json.dumps(snapshot)
    resp = restore(gw, snapshot, "overwrite")
    assert resp.status_code == 200, resp.text
