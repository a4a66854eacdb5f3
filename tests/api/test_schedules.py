"""POST, GET and DELETE /keys/schedule, and the background timer that carries schedules out."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from paygate.keys.lifecycle import rotate
from paygate.keys.schedules import Schedules
from paygate.keys.service import KeyService
from paygate.store.sqlite import SQLiteStore
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, wait_until


def schedule(gw: InProcessGateway, key: str, action: str, **body: Any) -> dict[str, Any]:
    if "executeAt" not in body:
        body.setdefault("delaySeconds", 3600)
    resp = gw.client.post("/keys/schedule", headers=gw.admin(), json={"key": key, "action": action, **body})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def pending(gw: InProcessGateway, key: str) -> list[dict[str, Any]]:
    resp = gw.client.get("/keys/schedule", params={"key": key}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return list(resp.json()["schedules"])


def executed(gw: InProcessGateway, sid: str) -> list[dict[str, Any]]:
    return [e for e in gw.events("schedule.executed") if e["data"]["scheduleId"] == sid]


def key_entry(gw: InProcessGateway, raw: str) -> dict[str, Any]:
    return next(k for k in gw.client.get("/keys", headers=gw.admin()).json() if k["keyMasked"] == masked(raw))


def test_a_schedule_is_created_listed_and_announced(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 400 * 86400))
    body = schedule(gw, raw, "revoke", executeAt=when)
    assert body["id"].startswith("sched_") and body["key"] == masked(raw) and body["action"] == "revoke"
    assert body["executeAt"] == when.replace("Z", ".000Z") and body["createdAt"].endswith("Z")
    assert [s["id"] for s in pending(gw, raw)] == [body["id"]]
    events = [e for e in gw.events("schedule.created") if e["data"]["scheduleId"] == body["id"]]
    assert len(events) == 1 and events[0]["data"]["action"] == "revoke" and raw not in gw.stderr()


def test_a_due_topup_is_carried_out_once(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    sid = schedule(gw, raw, "topup", delaySeconds=1, params={"credits": 5})["id"]
    wait_until(lambda: gw.balance(raw) == 6, what="the scheduled topup")
    wait_until(lambda: len(executed(gw, sid)) == 1, what="schedule.executed")
    [event] = executed(gw, sid)
    assert event["data"]["ok"] is True and event["data"]["newBalance"] == 6 and event["actor"] == "system"
    assert pending(gw, raw) == []


def test_a_due_revoke_revokes_the_key(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    schedule(gw, raw, "revoke", delaySeconds=1)
    gw.tick(time.time() + 2)  # the clock past the delay: the scheduled revoke
    assert key_entry(gw, raw)["active"] is False
    assert "error" in gw.call_tool("echo", {"text": "x"}, raw)


def test_scheduled_suspend_and_resume_toggle_the_key(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    schedule(gw, raw, "suspend", delaySeconds=1)
    gw.tick(time.time() + 2)  # the clock past the delay: the scheduled suspend
    assert key_entry(gw, raw)["suspended"] is True
    schedule(gw, raw, "resume", delaySeconds=1)
    gw.tick(time.time() + 2)  # the clock past the delay: the scheduled resume
    assert key_entry(gw, raw)["suspended"] is False
    assert "result" in gw.call_tool("echo", {"text": "x"}, raw)


def test_an_action_that_no_longer_applies_fails_cleanly_and_is_not_retried(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    sid = schedule(gw, raw, "resume", delaySeconds=1)["id"]  # the key is not suspended
    gw.tick(time.time() + 2)  # the clock past the delay: schedule.executed
    assert len(executed(gw, sid)) == 1
    event = executed(gw, sid)[0]["data"]
    assert event["ok"] is False and "not suspended" in event["error"]
    assert pending(gw, raw) == [] and key_entry(gw, raw)["suspended"] is False


def test_a_cancelled_schedule_is_gone(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    sid = schedule(gw, raw, "revoke")["id"]
    resp = gw.client.delete("/keys/schedule", params={"id": sid}, headers=gw.admin())
    assert resp.status_code == 200 and resp.json()["cancelled"] is True and resp.json()["id"] == sid
    assert pending(gw, raw) == []
    assert any(e["data"]["scheduleId"] == sid for e in gw.events("schedule.cancelled"))
    assert gw.client.delete("/keys/schedule", params={"id": sid}, headers=gw.admin()).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"action": "delete", "delaySeconds": 10},
        {"action": "revoke", "executeAt": "2001-01-01T00:00:00Z"},
        {"action": "revoke", "executeAt": "tomorrow"},
        {"action": "revoke", "executeAt": "2099-01-01T00:00:00"},
        {"action": "revoke", "executeAt": "2099-01-01T00:00:00Z", "delaySeconds": 10},
        {"action": "revoke"},
        {"action": "topup", "delaySeconds": 10},
        {"action": "topup", "delaySeconds": 10, "params": {"credits": 0}},
        {"action": "revoke", "delaySeconds": 10, "params": {"credits": 5}},
        {"action": "revoke", "delaySeconds": 0},
        {"action": "revoke", "delaySeconds": "10"},
        {"action": "revoke", "delaySeconds": 10, "surprise": 1},
        {"action": "revoke", "executeAt": "2999-01-01T00:00:00Z"},
    ],
)
def test_bad_input_is_a_400_that_schedules_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    raw = gw.create_key(1)
    resp = gw.client.post("/keys/schedule", headers=gw.admin(), json={"key": raw, **body})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert pending(gw, raw) == []


def test_unknown_keys_and_schedules_are_404s(gw: InProcessGateway) -> None:
    unknown = "pg_" + "0" * 48
    resp = gw.client.post(
        "/keys/schedule", headers=gw.admin(), json={"key": unknown, "action": "revoke", "delaySeconds": 10}
    )
    assert resp.status_code == 404
    assert gw.client.get("/keys/schedule", params={"key": unknown}, headers=gw.admin()).status_code == 404
    assert gw.client.delete("/keys/schedule", params={"id": "sched_nope"}, headers=gw.admin()).status_code == 404
    assert gw.client.delete("/keys/schedule", headers=gw.admin()).status_code == 400


def test_a_key_is_named_by_its_alias_too(gw: InProcessGateway) -> None:
    raw = "pg_" + secrets.token_hex(24)
    resp = gw.client.post(
        "/keys/import", headers=gw.admin(), json={"keys": [{"key": raw, "credits": 1, "alias": "sched-alias"}]}
    )
    assert resp.status_code == 200
    sid = schedule(gw, "sched-alias", "topup", delaySeconds=1, params={"credits": 2})["id"]
    assert [s["id"] for s in pending(gw, "sched-alias")] == [sid]
    gw.tick(time.time() + 2)  # the clock past the delay: the scheduled topup
    assert gw.balance(raw) == 3


def test_a_key_has_at_most_20_pending_schedules_and_revoked_keys_none(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    for _ in range(20):
        schedule(gw, raw, "suspend")
    resp = gw.client.post(
        "/keys/schedule", headers=gw.admin(), json={"key": raw, "action": "suspend", "delaySeconds": 60}
    )
    assert resp.status_code == 409 and len(pending(gw, raw)) == 20
    dead = gw.create_key(1)
    assert gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": dead}).status_code == 200
    resp = gw.client.post(
        "/keys/schedule",
        headers=gw.admin(),
        json={"key": dead, "action": "topup", "delaySeconds": 60, "params": {"credits": 1}},
    )
    assert resp.status_code == 409


def test_the_listing_without_a_key_is_soonest_first(gw: InProcessGateway) -> None:
    a, b = gw.create_key(1), gw.create_key(1)
    late = schedule(gw, a, "revoke", delaySeconds=7200)["id"]
    soon = schedule(gw, b, "revoke", delaySeconds=3000)["id"]
    ids = [s["id"] for s in gw.client.get("/keys/schedule", headers=gw.admin()).json()["schedules"]]
    assert ids.index(soon) < ids.index(late)


def test_schedules_survive_a_restart_and_run_after_it(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        raw = gw.create_key(1)
        soon = schedule(gw, raw, "topup", delaySeconds=3, params={"credits": 4})["id"]
        later = schedule(gw, raw, "revoke")["id"]
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        gw.tick(time.time() + 4)  # the clock past the delay: the topup scheduled before the restart
        assert gw.balance(raw) == 5
        assert [s["id"] for s in pending(gw, raw)] == [later]
        assert len(executed(gw, soon)) == 1


def test_a_rotated_keys_schedules_follow_it_to_the_new_key(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    sid = schedule(gw, raw, "topup", delaySeconds=2, params={"credits": 3})["id"]
    resp = gw.client.post("/keys/rotate", headers=gw.admin(), json={"key": raw})
    assert resp.status_code == 200, resp.text
    new = resp.json()["newKey"]
    assert [s["id"] for s in pending(gw, new)][:1] == [sid]
    gw.tick(time.time() + 3)  # the clock past the delay: the topup on the rotated key
    assert gw.balance(new) == 4


def test_schedules_a_crash_left_on_a_rotated_key_act_on_its_replacement(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        raw = gw.create_key(1)
        sid = schedule(gw, raw, "topup", delaySeconds=4, params={"credits": 6})["id"]
    store = SQLiteStore(Path(state))
    store.open()
    try:  # the rotation committed, then the process died before its listeners ran
        keys = KeyService(store)
        new = rotate(keys, keys.find(raw)).raw
    finally:
        store.close()
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert [s["id"] for s in pending(gw, new)] == [sid]
        gw.tick(time.time() + 5)  # the clock past the delay: the schedule made before the rotation
        assert len(executed(gw, sid)) == 1
        assert executed(gw, sid)[0]["data"]["ok"] is True and gw.balance(new) == 7
        assert key_entry(gw, raw)["credits"] == 0


def test_the_timer_reads_no_schedule_until_one_is_due(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.open()
    try:
        keys = KeyService(store)
        record = keys.create("k", 0).record
        service = Schedules(store, keys, lambda *_, **__: None)
        now = time.time()
        for i in range(15):
            service.create(record, "topup", now + 60 + i, {"credits": 1}, "test", now)
        reads: list[str] = []
        for name in ("doc_items", "doc_list", "doc_get"):
            real = getattr(store, name)
            monkeypatch.setattr(store, name, lambda *a, _n=name, _r=real: reads.append(_n) or _r(*a))
        service.tick(now + 30)
        assert reads == []  # nothing due: not one document read
        service.tick(now + 61.5)
        assert reads == ["doc_get", "doc_get"] and record.credits == 2
        assert len(service.pending(record.key_hash)) == 13
    finally:
        store.close()


def test_schedules_a_restore_brings_back_are_listed_and_run(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    # due in a minute: the gateway's own once-a-second ticker must not run it before the test deletes it
    sid = schedule(gw, raw, "topup", delaySeconds=60, params={"credits": 2})["id"]
    snapshot = gw.client.get("/admin/backup", headers=gw.admin()).json()
    assert gw.client.delete("/keys/schedule", params={"id": sid}, headers=gw.admin()).status_code == 200
    resp = gw.client.post("/admin/restore", headers=gw.admin(), json={"backup": snapshot, "mode": "overwrite"})
    assert resp.status_code == 200, resp.text
    assert [s["id"] for s in pending(gw, raw)] == [sid]
    gw.tick(time.time() + 61)  # the clock past the delay: the restored schedule
    assert gw.balance(raw) == 3
