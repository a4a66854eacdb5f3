"""GET /admin/backup and POST /admin/restore: checksummed snapshots, merge/overwrite/full restores (refusals
are in test_backup_rejects.py, what a restore must not revive in test_backup_restore_edges.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.api.backup_support import backup, comparable, digest, key_entry, make_plan, plan_doc, restore, sha, tags
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, text_of


def test_a_backup_is_versioned_checksummed_and_holds_no_raw_key(gw: InProcessGateway) -> None:
    raw = gw.create_key(25, tags={"team": "red"})
    plan = make_plan(gw, creditMultiplier=2)
    admin = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "ops", "role": "viewer"}).json()["key"]
    resp = gw.client.get("/admin/backup", headers=gw.admin())
    snapshot = resp.json()
    assert snapshot["version"] == 1 and snapshot["createdAt"].endswith("Z")
    assert snapshot["checksum"] == digest(snapshot["data"])
    for secret in (raw, admin, gw.admin_key):
        assert secret not in resp.text
    entry = key_entry(snapshot, raw)
    assert entry["credits"] == 25 and entry["tags"] == {"team": "red"} and entry["keyHash"] == sha(raw)
    assert {"name", "active", "quota", "alias", "plan", "extra", "createdAt", "totalSpent"} <= set(entry)
    documents = snapshot["data"]["documents"]
    assert documents["plan"][plan]["creditMultiplier"] == 2
    assert any(d["name"] == "ops" and d["role"] == "viewer" for d in documents["admin_key"].values())
    event = gw.events("backup.exported")[-1]
    assert event["data"]["keys"] == len(snapshot["data"]["keys"]) and event["actor"] == "admin"


def test_overwrite_restores_changed_keys_and_documents_and_keeps_newer_ones(gw: InProcessGateway) -> None:
    raw = gw.create_key(30, tags={"tier": "gold"})
    plan = make_plan(gw, rateLimitPerMin=11)
    snapshot = backup(gw)

    text_of(gw.call_tool("echo", {"text": "spend"}, raw))
    gw.client.post("/topup", headers=gw.admin(), json={"key": raw, "credits": 100})
    tags(gw, raw, {"tier": "bronze"})
    gw.client.post("/admin/plans", headers=gw.admin(), json={"name": plan, "rateLimitPerMin": 99})
    newer = gw.create_key(7)
    assert gw.balance(raw) == 129

    resp = restore(gw, snapshot, "overwrite")
    assert resp.status_code == 200, resp.text
    counts = resp.json()["restored"]
    assert counts["keys"]["updated"] >= 1 and counts["keys"]["revoked"] == 0
    assert counts["documents"]["plan"]["updated"] >= 1
    assert gw.balance(raw) == 30
    assert key_entry(backup(gw), raw)["tags"] == {"tier": "gold"}
    assert key_entry(backup(gw), raw)["totalSpent"] == 0
    doc = plan_doc(gw, plan)
    assert doc is not None and doc["rateLimitPerMin"] == 11
    assert gw.balance(newer) == 7  # overwrite keeps what the backup does not know
    event = gw.events("backup.restored")[-1]
    assert event["data"]["mode"] == "overwrite" and raw not in json.dumps(event)


def test_restoring_a_fresh_backup_over_itself_changes_nothing_and_says_so(gw: InProcessGateway) -> None:
    gw.create_key(7, tags={"a": "b"})
    make_plan(gw, creditMultiplier="1.5")
    snapshot = backup(gw)
    resp = restore(gw, snapshot, "overwrite")
    assert resp.status_code == 200, resp.text
    counts = resp.json()["restored"]
    assert counts["keys"]["updated"] == 0 and counts["keys"]["skipped"] == len(snapshot["data"]["keys"])
    assert all(c["updated"] == 0 and c["created"] == 0 for c in counts["documents"].values())
    assert comparable(backup(gw)) == comparable(snapshot)


def test_merge_adds_what_is_missing_and_keeps_what_exists(gw: InProcessGateway) -> None:
    raw = gw.create_key(40)
    plan = make_plan(gw, rateLimitPerMin=5)
    snapshot = backup(gw)
    gw.client.post("/topup", headers=gw.admin(), json={"key": raw, "credits": 2})
    gw.client.post("/admin/plans", headers=gw.admin(), json={"name": plan, "rateLimitPerMin": 6})
    assert gw.client.delete("/admin/plans", params={"name": plan}, headers=gw.admin()).status_code == 200

    resp = restore(gw, snapshot, "merge")
    assert resp.status_code == 200, resp.text
    assert resp.json()["restored"]["keys"]["created"] == 0 and resp.json()["restored"]["keys"]["skipped"] >= 1
    assert gw.balance(raw) == 42  # kept
    doc = plan_doc(gw, plan)
    assert doc is not None and doc["rateLimitPerMin"] == 5  # missing again, so added back


def test_full_restore_revokes_and_zeroes_keys_and_deletes_documents_not_in_the_backup(tmp_path: Path) -> None:
    admin = "admin_backup_full_0123456789abcdef"
    with running_inprocess_gateway(
        "--server", ECHO_COMMAND, "--rate-limit", "0", state_file=str(tmp_path / "s.db"), admin_key=admin
    ) as gw:
        kept = gw.create_key(10)
        snapshot = backup(gw)
        extra_key = gw.create_key(50)
        extra_plan = make_plan(gw)
        boss = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "boss", "role": "super_admin"})
        boss_key = boss.json()["key"]
        helper = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "helper", "role": "admin"})

        resp = restore(gw, snapshot, "full", headers={"X-Admin-Key": boss_key})
        assert resp.status_code == 200, resp.text
        counts = resp.json()["restored"]
        assert counts["keys"]["revoked"] == 1 and counts["documents"]["plan"]["deleted"] == 1
        assert gw.balance(kept) == 10
        assert gw.call_tool("echo", {"text": "x"}, extra_key)["error"]
        assert key_entry(backup(gw), extra_key)["credits"] == 0
        assert key_entry(backup(gw), extra_key)["active"] is False
        assert plan_doc(gw, extra_plan) is None
        # the caller's own admin key is left alone; other admin keys the backup lacks are gone
        assert gw.client.get("/admin/keys", headers={"X-Admin-Key": boss_key}).status_code == 200
        assert gw.client.get("/keys", headers={"X-Admin-Key": helper.json()["key"]}).status_code == 401


def test_a_backup_restores_into_a_fresh_gateway_whose_keys_then_work(tmp_path: Path) -> None:
    admin = "admin_backup_roundtrip_0123456789"
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_inprocess_gateway(*args, state_file=str(tmp_path / "old.db"), admin_key=admin) as old:
        plan = make_plan(old, creditMultiplier=2)
        raw = old.create_key(20)
        on_plan = old.client.post("/admin/keys/plan", headers=old.admin(), json={"key": raw, "plan": plan})
        assert on_plan.status_code == 200
        alias = f"a-{uuid.uuid4().hex[:6]}"
        assert old.client.post("/keys/alias", headers=old.admin(), json={"key": raw, "alias": alias}).status_code == 200
        text_of(old.call_tool("echo", {"text": "before"}, raw))
        viewer = old.client.post("/admin/keys", headers=old.admin(), json={"name": "v", "role": "viewer"}).json()["key"]
        snapshot = backup(old)
    fresh_state = str(tmp_path / "fresh.db")
    with running_inprocess_gateway(*args, state_file=fresh_state, admin_key=admin) as fresh:
        resp = restore(fresh, snapshot, "merge")
        assert resp.status_code == 200, resp.text
        assert resp.json()["restored"]["keys"]["created"] == 1
        assert fresh.balance(raw) == 18
        assert text_of(fresh.call_tool("echo", {"text": "after"}, raw)) == "after"
        assert fresh.balance(raw) == 16  # still on the 2x plan
        tags(fresh, alias, {"restored": "yes"})  # the alias came along
        assert fresh.client.get("/keys", headers={"X-Admin-Key": viewer}).status_code == 200
    with running_inprocess_gateway(*args, state_file=fresh_state, admin_key=admin) as again:
        assert again.balance(raw) == 16
        assert plan_doc(again, plan) is not None
