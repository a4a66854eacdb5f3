"""The durable audit log through the real CLI: GET /audit, /audit/export, /audit/stats, /admin/compliance/export."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from paygate.core.keys import hash_key
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, wait_until

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def audit(gw: InProcessGateway, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    resp = gw.client.get("/audit", headers=headers or gw.admin(), params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def of_key(events: list[dict[str, Any]], raw: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if masked(raw)
        in (e["metadata"].get("keyMasked"), e["metadata"].get("oldKeyMasked"), e["metadata"].get("newKeyMasked"))
    ]


def test_admin_actions_appear_newest_first_with_masked_keys_only(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    assert gw.client.post("/topup", headers=gw.admin(), json={"key": raw, "credits": 5}).status_code == 200
    rotated = gw.client.post("/keys/rotate", headers=gw.admin(), json={"key": raw})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["newKey"]
    body = audit(gw, limit=1000)
    mine = of_key(body["events"], raw)
    assert [e["type"] for e in mine] == ["key.rotated", "key.topup", "key.created"]
    created = mine[-1]
    assert created["actor"] == "admin" and created["metadata"]["credits"] == 10
    assert created["message"] == "Key created: test" and created["timestamp"].endswith("Z")
    assert mine[0]["metadata"]["newKeyMasked"] == masked(new) and mine[0]["id"] > mine[1]["id"] > created["id"]
    assert body["count"] == len(body["events"]) <= body["total"] and body["limit"] == 1000
    for secret in (raw, new, hash_key(raw), hash_key(new), gw.admin_key):
        for path in ("/audit?limit=1000", "/audit/export", "/audit/export?format=csv", "/admin/compliance/export"):
            assert secret not in gw.client.get(path, headers=gw.admin()).text


def test_filters_by_types_actor_since_until_and_limit(gw: InProcessGateway) -> None:
    made = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "ops bot", "role": "admin"}).json()
    bot = {"X-Admin-Key": made["key"]}
    raw = gw.create_key(4)
    assert gw.client.post("/keys/revoke", headers=bot, json={"key": raw}).status_code == 200

    only = audit(gw, types="key.revoked,key.created")["events"]
    assert {e["type"] for e in only} <= {"key.revoked", "key.created"}
    assert [e["type"] for e in of_key(only, raw)] == ["key.revoked", "key.created"]
    by_bot = audit(gw, actor=f"admin:ops bot ({made['keyMasked']})")
    assert [e["type"] for e in by_bot["events"]] == ["key.revoked"] and by_bot["total"] == 1
    assert audit(gw, limit=1)["count"] == 1

    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")  # no zone: UTC
    assert audit(gw, since=future)["events"] == []
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert of_key(audit(gw, since=past, until=future, limit=1000)["events"], raw)
    assert audit(gw, until="2000-01-01T00:00:00Z")["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"since": "yesterday"},
        {"until": "2024-13-01"},
        {"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
        {"types": ","},
        {"types": "key.created,bad type"},
        {"types": ",".join(f"t{i}" for i in range(51))},
        {"actor": ""},
        {"actor": "x" * 201},
    ],
)
def test_bad_query_parameters_are_400(gw: InProcessGateway, params: dict[str, str]) -> None:
    resp = gw.client.get("/audit", headers=gw.admin(), params=params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/audit/export", {"format": "xml"}),
        ("/audit/export", {"limit": "100001"}),
        ("/audit/export", {"since": "nope"}),
        ("/admin/compliance/export", {"framework": "pci"}),
        ("/admin/compliance/export", {"format": "pdf"}),
        ("/admin/compliance/export", {"until": "later"}),
    ],
)
def test_bad_export_parameters_are_400(gw: InProcessGateway, path: str, params: dict[str, str]) -> None:
    resp = gw.client.get(path, headers=gw.admin(), params=params)
    assert resp.status_code == 400, resp.text


def test_export_json_and_csv_hold_the_matching_log_oldest_first(gw: InProcessGateway) -> None:
    raw = gw.create_key(2, name='=HYPERLINK("http://x")')
    gw.client.post("/topup", headers=gw.admin(), json={"key": raw, "credits": 1})
    data = gw.client.get("/audit/export", headers=gw.admin(), params={"types": "key.created,key.topup"})
    assert data.status_code == 200
    events = of_key(data.json()["events"], raw)
    assert [e["type"] for e in events] == ["key.created", "key.topup"]
    assert data.json()["count"] == len(data.json()["events"])

    resp = gw.client.get("/audit/export", headers=gw.admin(), params={"format": "csv"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert list(rows[0]) == ["id", "timestamp", "type", "actor", "message", "metadata"]
    mine = [r for r in rows if masked(raw) in r["metadata"]]
    assert [r["type"] for r in mine] == ["key.created", "key.topup"]
    assert '"name":"=HYPERLINK' in mine[0]["metadata"]
    assert all(not cell.startswith(FORMULA_STARTS) for r in rows for cell in r.values())


def test_stats_count_events_by_type_actor_and_category(gw: InProcessGateway) -> None:
    before = gw.client.get("/audit/stats", headers=gw.admin()).json()
    gw.create_key(1)
    assert gw.client.get("/audit", headers={"X-Admin-Key": "wrong"}).status_code == 401
    stats = gw.client.get("/audit/stats", headers=gw.admin()).json()
    assert stats["totalEvents"] == before["totalEvents"] + 2
    assert stats["byType"]["key.created"] == before["byType"].get("key.created", 0) + 1
    assert stats["byType"]["admin.auth_failed"] == before["byType"].get("admin.auth_failed", 0) + 1
    assert stats["byActor"]["anonymous"] >= 1 and stats["byActor"]["admin"] >= 1
    assert stats["byCategory"]["security"] == before["byCategory"]["security"] + 1
    assert stats["oldestEvent"] <= stats["newestEvent"]
    assert stats["retention"] == {
        "maxEntries": 10_000,
        "maxAgeDays": 30,
        "pruneIntervalSeconds": 60.0,
        "authFailureMaxEntries": 1000,
    }


def test_compliance_export_classifies_events_for_each_framework(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    gw.client.post("/topup", headers=gw.admin(), json={"key": raw, "credits": 1})
    gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": True})
    gw.client.post("/maintenance", headers=gw.admin(), json={"enabled": False})
    gw.client.get("/audit", headers={"X-Admin-Key": "nope"})
    since = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    for framework, control in (("soc2", "CC6.1"), ("gdpr", "Art. 25"), ("hipaa", "164.312(a)(1)")):
        resp = gw.client.get(
            "/admin/compliance/export", headers=gw.admin(), params={"framework": framework, "since": since}
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["framework"] == framework and body["period"]["since"] is not None
        assert body["totalEvents"] == len(body["events"]) == sum(body["summary"].values())
        category = {e["type"]: e["category"] for e in body["events"]}
        assert category["key.created"] == "access_control" and category["key.topup"] == "data_processing"
        assert category["maintenance.enabled"] == "config_change" and category["admin.auth_failed"] == "security"
        created = next(e for e in body["events"] if e["type"] == "key.created")
        assert created["control"].startswith(control)
    resp = gw.client.get("/admin/compliance/export", headers=gw.admin(), params={"format": "csv", "framework": "gdpr"})
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert resp.status_code == 200 and rows and list(rows[0])[4:6] == ["category", "control"]
    assert {r["category"] for r in rows} <= {"access_control", "data_processing", "config_change", "security"}
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    empty = gw.client.get("/admin/compliance/export", headers=gw.admin(), params={"since": future}).json()
    assert empty["totalEvents"] == 0 and empty["framework"] == "soc2"


def test_a_viewer_may_read_the_log_and_there_are_no_write_routes(gw: InProcessGateway) -> None:
    viewer = {
        "X-Admin-Key": gw.client.post(
            "/admin/keys", headers=gw.admin(), json={"name": "auditor", "role": "viewer"}
        ).json()["key"]
    }
    for path in ("/audit", "/audit/export", "/audit/stats", "/admin/compliance/export"):
        assert gw.client.get(path, headers=viewer).status_code == 200, path
        assert gw.client.get(path).status_code == 401, path
    total = audit(gw)["total"]
    for method in ("POST", "PUT", "DELETE"):
        assert gw.client.request(method, "/audit", headers=gw.admin()).status_code == 405
    assert audit(gw)["total"] == total


def test_the_log_survives_a_restart(tmp_path: Path) -> None:
    state_file = str(tmp_path / "s.db")
    admin = "admin_audit_restart_0123456789abcdef"
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state_file, admin_key=admin) as gw:
        raw = gw.create_key(7)
        first = of_key(audit(gw)["events"], raw)
        assert [e["type"] for e in first] == ["key.created"]
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state_file, admin_key=admin) as gw:
        assert of_key(audit(gw)["events"], raw) == first
        gw.create_key(1)
        assert audit(gw, types="key.created")["total"] == 2
        assert admin not in gw.client.get("/audit/export", headers=gw.admin()).text


def test_events_from_background_work_are_recorded_too(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    run_at = datetime.fromtimestamp(time.time() + 1, UTC).isoformat()
    resp = gw.client.post(
        "/keys/schedule",
        headers=gw.admin(),
        json={"key": raw, "action": "topup", "executeAt": run_at, "params": {"credits": 2}},
    )
    assert resp.status_code in (200, 201), resp.text
    wait_until(
        lambda: bool([e for e in audit(gw, types="schedule.executed")["events"] if masked(raw) in str(e["metadata"])]),
        what="the scheduled topup in the audit log",
    )


def test_a_keys_activity_timeline_reads_its_admin_events_from_the_audit_log_after_a_restart(tmp_path: Path) -> None:
    state_file = str(tmp_path / "s.db")
    admin = "admin_audit_activity_0123456789abcdef"
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state_file, admin_key=admin) as gw:
        raw = gw.create_key(7)
        assert gw.client.post("/keys/suspend", headers=gw.admin(), json={"key": raw}).status_code == 200
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state_file, admin_key=admin) as gw:
        resp = gw.client.get("/keys/activity", headers=gw.admin(), params={"key": raw})
        assert resp.status_code == 200, resp.text
        admin_events = [e["type"] for e in resp.json()["events"] if e["source"] == "audit"]
        assert admin_events == ["key.suspended", "key.created"]
