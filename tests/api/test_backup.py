"""GET /admin/backup and POST /admin/restore: checksummed snapshots, merge/overwrite/full restores."""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, text_of, write_config


def backup(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/backup", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def restore(gw: InProcessGateway, snapshot: dict[str, Any], mode: str, headers: dict[str, str] | None = None) -> Any:
    return gw.client.post("/admin/restore", headers=headers or gw.admin(), json={"backup": snapshot, "mode": mode})


def digest(data: Any) -> str:
    """The documented checksum: SHA-256 of JSON with sorted keys, no whitespace, UTF-8."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def key_entry(snapshot: dict[str, Any], raw: str) -> dict[str, Any]:
    return next(k for k in snapshot["data"]["keys"] if k["keyHash"] == sha(raw))


def make_plan(gw: InProcessGateway, **fields: Any) -> str:
    name = f"plan-{uuid.uuid4().hex[:8]}"
    resp = gw.client.post("/admin/plans", headers=gw.admin(), json={"name": name, **fields})
    assert resp.status_code == 201, resp.text
    return name


def plan_doc(gw: InProcessGateway, name: str) -> dict[str, Any] | None:
    listing = gw.client.get("/admin/plans", headers=gw.admin()).json()["plans"]
    return next((p for p in listing if p["name"] == name), None)


def tags(gw: InProcessGateway, raw: str, values: dict[str, str | None]) -> None:
    resp = gw.client.post("/keys/tags", headers=gw.admin(), json={"key": raw, "tags": values})
    assert resp.status_code == 200, resp.text


def comparable(snapshot: dict[str, Any]) -> Any:
    return snapshot["data"]


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


def tampered_cases(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    data_edit = copy.deepcopy(snapshot)
    data_edit["data"]["keys"][0]["credits"] += 1000  # checksum left as it was
    bad_sum = {**snapshot, "checksum": "0" * 64}
    no_sum = {k: v for k, v in snapshot.items() if k != "checksum"}
    version = {**snapshot, "version": 2}
    version_str = {**snapshot, "version": "1"}
    malformed = copy.deepcopy(snapshot)
    malformed["data"]["keys"][0]["credits"] = -5
    malformed["checksum"] = digest(malformed["data"])
    bad_field = copy.deepcopy(snapshot)
    bad_field["data"]["keys"][0]["surprise"] = 1
    bad_field["checksum"] = digest(bad_field["data"])
    bad_hash = copy.deepcopy(snapshot)
    bad_hash["data"]["keys"][0]["keyHash"] = "not-a-hash"
    bad_hash["checksum"] = digest(bad_hash["data"])
    bad_docs = copy.deepcopy(snapshot)
    bad_docs["data"]["documents"] = {"plan": ["not", "an", "object"]}
    bad_docs["checksum"] = digest(bad_docs["data"])
    bad_plan = copy.deepcopy(snapshot)
    bad_plan["data"]["documents"]["plan"] = {"evil": {"name": "evil", "creditMultiplier": "abc"}}
    bad_plan["checksum"] = digest(bad_plan["data"])
    bad_admin = copy.deepcopy(snapshot)
    bad_admin["data"]["documents"]["admin_key"] = {
        sha("ak_x"): {"name": "x", "role": "god", "keyMasked": "ak_x", "active": True}
    }
    bad_admin["checksum"] = digest(bad_admin["data"])
    odd_sum = {**snapshot, "checksum": "é" * 64}
    # aliases follow the rules POST /keys/alias enforces; an active key's plan must exist after the restore
    bad_aliases = []
    for alias in ("a,b", "pg_looks_like_a_key", "x" * 101):
        bad_alias = copy.deepcopy(snapshot)
        bad_alias["data"]["keys"][0]["alias"] = alias
        bad_alias["checksum"] = digest(bad_alias["data"])
        bad_aliases.append(bad_alias)
    no_plan = copy.deepcopy(snapshot)
    no_plan["data"]["keys"][0]["keyHash"] = sha(f"pg_new_{uuid.uuid4().hex}")
    no_plan["data"]["keys"][0]["plan"] = "no-such-plan"
    no_plan["checksum"] = digest(no_plan["data"])
    # policy fields the charge path reads must have the shape their endpoints give them
    bad_policies = []
    for field, value in (
        ("autoTopup", {"threshold": "5", "amount": 10, "maxDaily": 0}),
        ("autoTopup", {"threshold": 5, "amount": -10, "maxDaily": 0}),
        ("quota", {"dailyCallLimit": -1}),
        ("quota", {"hourlyCallLimit": 5}),
    ):
        bad_policy = copy.deepcopy(snapshot)
        bad_policy["data"]["keys"][0][field] = value
        bad_policy["checksum"] = digest(bad_policy["data"])
        bad_policies.append(bad_policy)
    return [
        data_edit,
        bad_sum,
        no_sum,
        version,
        version_str,
        malformed,
        bad_field,
        bad_hash,
        bad_docs,
        bad_plan,
        bad_admin,
        odd_sum,
        *bad_aliases,
        no_plan,
        *bad_policies,
    ]


@pytest.mark.parametrize("case", range(20))
@pytest.mark.parametrize("mode", ["merge", "full"])
def test_a_tampered_or_malformed_backup_is_a_400_that_changes_nothing(
    gw: InProcessGateway, case: int, mode: str
) -> None:
    raw = gw.create_key(33)
    snapshot = backup(gw)
    other = gw.create_key(9)  # a full restore of the snapshot would revoke this one
    before = comparable(backup(gw))
    resp = restore(gw, tampered_cases(snapshot)[case], mode)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert comparable(backup(gw)) == before
    assert gw.balance(raw) == 33 and gw.balance(other) == 9


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"mode": "merge"},
        {"backup": [], "mode": "merge"},
        {"backup": {}, "mode": "replace"},
        {"backup": {}, "mode": "merge", "x": 1},
    ],
)
def test_a_malformed_restore_request_is_a_400(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = comparable(backup(gw))
    resp = gw.client.post("/admin/restore", headers=gw.admin(), json=body)
    assert resp.status_code == 400, resp.text
    assert comparable(backup(gw)) == before


def test_a_restore_whose_alias_belongs_to_another_key_is_a_409_that_changes_nothing(gw: InProcessGateway) -> None:
    alias = f"dup-{uuid.uuid4().hex[:6]}"
    first = gw.create_key(5)
    gw.client.post("/keys/alias", headers=gw.admin(), json={"key": first, "alias": alias})
    snapshot = backup(gw)
    entry = key_entry(snapshot, first)
    foreign = copy.deepcopy(snapshot)
    foreign["data"]["keys"] = [{**entry, "keyHash": sha("pg_someone_else_entirely_0000"), "credits": 99}]
    foreign["data"]["documents"] = {}
    foreign["checksum"] = digest(foreign["data"])
    before = comparable(backup(gw))
    resp = restore(gw, foreign, "merge")
    assert resp.status_code == 409 and alias in resp.json()["error"]
    assert comparable(backup(gw)) == before


def test_a_restore_whose_alias_is_another_keys_raw_value_is_a_409_that_changes_nothing(tmp_path: Path) -> None:
    raw = "custom-format-key-0001"  # importKeys in the config may hold keys of any format
    config = write_config(tmp_path, {"importKeys": {raw: 1}})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--config", config) as gw:
        other = gw.create_key(5)
        snapshot = backup(gw)
        key_entry(snapshot, other)["alias"] = raw
        snapshot["checksum"] = digest(snapshot["data"])
        before = comparable(backup(gw))
        resp = restore(gw, snapshot, "overwrite")
        assert resp.status_code == 409 and "collides" in resp.json()["error"]
        assert comparable(backup(gw)) == before


def test_backup_needs_the_admin_role_and_restore_the_super_admin_role(gw: InProcessGateway) -> None:
    keys = {
        role: gw.client.post("/admin/keys", headers=gw.admin(), json={"name": role, "role": role}).json()["key"]
        for role in ("viewer", "admin")
    }
    assert gw.client.get("/admin/backup", headers={"X-Admin-Key": keys["viewer"]}).status_code == 403
    assert gw.client.get("/admin/backup", headers={"X-Admin-Key": keys["admin"]}).status_code == 200
    snapshot = backup(gw)
    assert restore(gw, snapshot, "merge", headers={"X-Admin-Key": keys["admin"]}).status_code == 403


@pytest.mark.parametrize("mode", ["merge", "overwrite", "full"])
def test_a_restore_never_reactivates_a_revoked_admin_key(tmp_path: Path, mode: str) -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=str(tmp_path / "s.db")) as gw:
        leaked = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "leaked", "role": "admin"}).json()
        old = backup(gw)  # taken while the key was still active
        assert gw.client.post("/admin/keys/revoke", headers=gw.admin(), json={"key": leaked["key"]}).status_code == 200
        if mode == "full":  # a full restore of a backup without the key must not drop its revocation either
            newer = backup(gw)
            newer["data"]["documents"]["admin_key"].pop(sha(leaked["key"]))
            newer["checksum"] = digest(newer["data"])
            assert restore(gw, newer, "full").status_code == 200
        resp = restore(gw, old, mode)
        assert resp.status_code == 200, resp.text
        assert resp.json()["restored"]["documents"]["admin_key"]["skipped"] >= 1
        assert gw.client.get("/maintenance", headers={"X-Admin-Key": leaked["key"]}).status_code == 401
        listed = gw.client.get("/admin/keys", headers=gw.admin()).json()["keys"]
        assert [k["active"] for k in listed if k["name"] == "leaked"] == [False]


@pytest.mark.parametrize("mode", ["merge", "overwrite"])
def test_a_restore_does_not_revive_a_hold_on_a_key_it_does_not_rewrite(tmp_path: Path, mode: str) -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=str(tmp_path / "s.db")) as gw:
        raw = gw.create_key(100)
        held = gw.client.post("/keys/reserve", headers=gw.admin(), json={"key": raw, "credits": 40}).json()
        old = backup(gw)  # the hold is active here: 60 on the key, 40 held
        assert (
            gw.client.post("/keys/reserve/release", headers=gw.admin(), json={"reservationId": held["id"]}).status_code
            == 200
        )
        # the settled hold is forgotten (after an hour, or by a full restore that does not have it)
        now = backup(gw)
        now["data"]["documents"]["reservation"].pop(held["id"])
        now["checksum"] = digest(now["data"])
        assert restore(gw, now, "full").status_code == 200
        if mode == "overwrite":  # revoked since: the restore leaves the key (and so its holds) alone
            assert gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": raw}).status_code == 200
        before = backup(gw)["data"]["keys"]
        resp = restore(gw, old, mode)
        assert resp.status_code == 200, resp.text
        assert resp.json()["restored"]["documents"]["reservation"]["skipped"] >= 1
        # releasing a revived hold would put the 40 credits on the key a second time
        assert (
            gw.client.post("/keys/reserve/release", headers=gw.admin(), json={"reservationId": held["id"]}).status_code
            == 404
        )
        assert backup(gw)["data"]["keys"] == before


def test_a_merge_restore_does_not_replay_a_scheduled_topup_that_already_ran(tmp_path: Path) -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=str(tmp_path / "s.db")) as gw:
        raw = gw.create_key(10)
        made = gw.client.post(
            "/keys/schedule",
            headers=gw.admin(),
            json={"key": raw, "action": "topup", "delaySeconds": 1, "params": {"credits": 5}},
        )
        assert made.status_code == 201, made.text
        old = backup(gw)  # the topup is still pending in it
        gw.tick(time.time() + 2)  # the clock past the delay: the scheduled topup
        assert gw.balance(raw) == 15
        resp = restore(gw, old, "merge")
        assert resp.status_code == 200, resp.text
        assert resp.json()["restored"]["documents"]["schedule"] == {
            "created": 0,
            "updated": 0,
            "skipped": 1,
            "deleted": 0,
        }
        assert gw.client.get("/keys/schedule", headers=gw.admin()).json()["count"] == 0
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=str(tmp_path / "s.db")) as gw:
        assert gw.client.get("/keys/schedule", headers=gw.admin()).json()["count"] == 0
        assert gw.balance(raw) == 15


def test_a_full_restore_of_a_backup_older_than_a_rotation_keeps_the_rotated_key(tmp_path: Path) -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=str(tmp_path / "s.db")) as gw:
        raw = gw.create_key(30)
        old = backup(gw)
        rotated = gw.client.post("/keys/rotate", headers=gw.admin(), json={"key": raw}).json()["newKey"]
        twice = gw.client.post("/keys/rotate", headers=gw.admin(), json={"key": rotated}).json()["newKey"]
        resp = restore(gw, old, "full")
        assert resp.status_code == 200, resp.text
        assert resp.json()["restored"]["keys"] == {"created": 0, "updated": 0, "skipped": 1, "revoked": 0}
        assert gw.balance(twice) == 30 and "result" in gw.call_tool("echo", {"text": "x"}, twice)
        assert "error" in gw.call_tool("echo", {"text": "x"}, raw)  # the old key stays dead
        # ...and it cannot be left on a plan the full restore would delete
        plan = make_plan(gw)
        on_plan = gw.client.post("/admin/keys/plan", headers=gw.admin(), json={"key": twice, "plan": plan})
        assert on_plan.status_code == 200
        before = comparable(backup(gw))
        refused = restore(gw, old, "full")
        assert refused.status_code == 400 and plan in refused.json()["error"]
        assert comparable(backup(gw)) == before


def test_a_schedule_restored_into_a_fresh_gateway_runs_when_due(tmp_path: Path) -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND) as source:
        raw = source.create_key(10)
        made = source.client.post(
            "/keys/schedule",
            headers=source.admin(),
            json={"key": raw, "action": "topup", "delaySeconds": 2, "params": {"credits": 5}},
        )
        assert made.status_code == 201, made.text
        snapshot = backup(source)
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=str(tmp_path / "s.db")) as gw:
        assert restore(gw, snapshot, "merge").status_code == 200
        gw.tick(time.time() + 3)  # the clock past the delay: the restored scheduled topup
        assert gw.balance(raw) == 15
