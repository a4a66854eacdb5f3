"""What a restore must not bring back or undo: a revoked admin key, a hold on a key it does not rewrite, a
scheduled top-up that already ran, a later rotation; and a restored schedule runs when due."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.api.backup_support import backup, comparable, digest, make_plan, restore, sha
from tests.inprocess import running_inprocess_gateway
from tests.support import ECHO_COMMAND


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
