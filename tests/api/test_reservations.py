"""Credit reservations: POST /keys/reserve, /keys/reserve/commit, /keys/reserve/release, GET /keys/reserve."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from paygate.keys.lifecycle import rotate
from paygate.keys.reservations import Reservations
from paygate.keys.service import KeyService
from paygate.store.sqlite import SQLiteStore
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked


def new_key(gw: InProcessGateway, credits: int, **fields: Any) -> str:
    """A key with chosen fields (alias, suspended …), made through POST /keys/import with a raw key."""
    raw = "pg_" + secrets.token_hex(24)
    resp = gw.client.post(
        "/keys/import", headers=gw.admin(), json={"keys": [{"key": raw, "credits": credits, **fields}]}
    )
    assert resp.status_code == 200 and resp.json()["imported"] == 1, resp.text
    return raw


def reserve(gw: InProcessGateway, key: str, credits: int, **extra: Any) -> dict[str, Any]:
    resp = gw.client.post("/keys/reserve", headers=gw.admin(), json={"key": key, "credits": credits, **extra})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def listed(gw: InProcessGateway, key: str) -> list[dict[str, Any]]:
    resp = gw.client.get("/keys/reserve", params={"key": key}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return list(resp.json()["reservations"])


def spent(gw: InProcessGateway, raw: str) -> int:
    return int(
        next(k for k in gw.client.get("/keys", headers=gw.admin()).json() if k["keyMasked"] == masked(raw))[
            "totalSpent"
        ]
    )


def test_reserving_takes_the_credits_out_of_the_balance_and_lists_the_hold(gw: InProcessGateway) -> None:
    raw = new_key(gw, 100)
    body = reserve(gw, raw, 30, ttlSeconds=120, memo="batch #42")
    assert body["id"].startswith("rsv_") and body["credits"] == 30 and body["available"] == 70
    assert body["memo"] == "batch #42" and body["status"] == "active" and body["key"] == masked(raw)
    assert body["expiresAt"] > body["createdAt"]
    assert gw.balance(raw) == 70
    assert [r["id"] for r in listed(gw, raw)] == [body["id"]]
    events = [e for e in gw.events("credits.reserved") if e["data"]["reservationId"] == body["id"]]
    assert len(events) == 1 and events[0]["data"]["credits"] == 30 and events[0]["actor"]
    assert raw not in gw.stderr()


def test_committing_spends_the_hold_without_touching_the_balance_again(gw: InProcessGateway) -> None:
    raw = new_key(gw, 100)
    rid = reserve(gw, raw, 40)["id"]
    resp = gw.client.post("/keys/reserve/commit", headers=gw.admin(), json={"reservationId": rid})
    assert resp.status_code == 200, resp.text
    assert resp.json()["committed"] == 40 and resp.json()["released"] == 0 and resp.json()["balance"] == 60
    assert gw.balance(raw) == 60 and spent(gw, raw) == 40
    assert listed(gw, raw) == []
    assert any(e["data"]["reservationId"] == rid for e in gw.events("credits.committed"))


def test_a_partial_commit_spends_part_and_returns_the_rest(gw: InProcessGateway) -> None:
    raw = new_key(gw, 100)
    rid = reserve(gw, raw, 40)["id"]
    resp = gw.client.post("/keys/reserve/commit", headers=gw.admin(), json={"reservationId": rid, "credits": 15})
    assert resp.status_code == 200, resp.text
    assert resp.json()["committed"] == 15 and resp.json()["released"] == 25
    assert gw.balance(raw) == 85 and spent(gw, raw) == 15


def test_releasing_gives_the_whole_hold_back(gw: InProcessGateway) -> None:
    raw = new_key(gw, 100)
    rid = reserve(gw, raw, 40)["id"]
    resp = gw.client.post("/keys/reserve/release", headers=gw.admin(), json={"reservationId": rid})
    assert resp.status_code == 200, resp.text
    assert resp.json()["released"] == 40 and gw.balance(raw) == 100 and spent(gw, raw) == 0
    assert any(
        e["data"]["reservationId"] == rid and e["data"]["reason"] == "released" for e in gw.events("credits.released")
    )


@pytest.mark.parametrize(
    ("first", "second"), [("commit", "commit"), ("commit", "release"), ("release", "release"), ("release", "commit")]
)
def test_a_settled_reservation_cannot_be_settled_again(gw: InProcessGateway, first: str, second: str) -> None:
    raw = new_key(gw, 100)
    rid = reserve(gw, raw, 40)["id"]
    assert gw.client.post(f"/keys/reserve/{first}", headers=gw.admin(), json={"reservationId": rid}).status_code == 200
    balance = gw.balance(raw)
    resp = gw.client.post(f"/keys/reserve/{second}", headers=gw.admin(), json={"reservationId": rid})
    assert resp.status_code == 409 and "already" in resp.json()["error"]
    assert gw.balance(raw) == balance


def test_reserving_more_than_the_balance_is_a_402_that_holds_nothing(gw: InProcessGateway) -> None:
    raw = new_key(gw, 10)
    resp = gw.client.post("/keys/reserve", headers=gw.admin(), json={"key": raw, "credits": 11})
    assert resp.status_code == 402 and resp.json()["available"] == 10
    assert gw.balance(raw) == 10 and listed(gw, raw) == []


@pytest.mark.parametrize(
    "body",
    [
        {"credits": 0},
        {"credits": -5},
        {"credits": "5"},
        {"credits": 1.5},
        {"credits": 5, "ttlSeconds": 9},
        {"credits": 5, "ttlSeconds": 3601},
        {"credits": 5, "memo": "x" * 501},
        {"credits": 5, "surprise": 1},
        {"credits": 5, "key": ""},
        {},
    ],
)
def test_bad_reserve_input_is_a_400_that_holds_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    raw = new_key(gw, 50)
    resp = gw.client.post("/keys/reserve", headers=gw.admin(), json={"key": raw, **body})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert gw.balance(raw) == 50 and listed(gw, raw) == []


@pytest.mark.parametrize(
    "body",
    [
        {"reservationId": "nope"},
        {"reservationId": ""},
        {},
        {"reservationId": "rsv_x", "credits": -1},
        {"reservationId": 5},
    ],
)
def test_bad_commit_input_is_a_400(gw: InProcessGateway, body: dict[str, Any]) -> None:
    assert gw.client.post("/keys/reserve/commit", headers=gw.admin(), json=body).status_code == 400


def test_committing_more_than_the_hold_is_a_400_that_changes_nothing(gw: InProcessGateway) -> None:
    raw = new_key(gw, 100)
    rid = reserve(gw, raw, 40)["id"]
    resp = gw.client.post("/keys/reserve/commit", headers=gw.admin(), json={"reservationId": rid, "credits": 41})
    assert resp.status_code == 400
    assert gw.balance(raw) == 60 and [r["id"] for r in listed(gw, raw)] == [rid]


def test_unknown_keys_and_reservations_are_404s(gw: InProcessGateway) -> None:
    unknown = "pg_" + "0" * 48
    assert gw.client.post("/keys/reserve", headers=gw.admin(), json={"key": unknown, "credits": 1}).status_code == 404
    assert gw.client.get("/keys/reserve", params={"key": unknown}, headers=gw.admin()).status_code == 404
    for path in ("/keys/reserve/commit", "/keys/reserve/release"):
        resp = gw.client.post(path, headers=gw.admin(), json={"reservationId": "rsv_doesnotexist"})
        assert resp.status_code == 404


def test_a_key_is_named_by_its_alias_too(gw: InProcessGateway) -> None:
    raw = new_key(gw, 100, alias="reserve-by-alias")
    rid = reserve(gw, "reserve-by-alias", 25)["id"]
    assert gw.balance(raw) == 75
    assert [r["id"] for r in listed(gw, "reserve-by-alias")] == [rid]


@pytest.mark.parametrize("fields", [{"suspended": True}, {"active": False}])
def test_revoked_and_suspended_keys_cannot_reserve(gw: InProcessGateway, fields: dict[str, Any]) -> None:
    raw = new_key(gw, 100, **fields)
    resp = gw.client.post("/keys/reserve", headers=gw.admin(), json={"key": raw, "credits": 5})
    assert resp.status_code == 409
    assert listed(gw, raw) == []


def test_a_key_holds_at_most_50_reservations(gw: InProcessGateway) -> None:
    raw = new_key(gw, 100)
    for _ in range(50):
        reserve(gw, raw, 1)
    resp = gw.client.post("/keys/reserve", headers=gw.admin(), json={"key": raw, "credits": 1})
    assert resp.status_code == 409
    assert gw.balance(raw) == 50 and len(listed(gw, raw)) == 50


def test_the_listing_without_a_key_shows_every_active_hold(gw: InProcessGateway) -> None:
    a, b = new_key(gw, 10), new_key(gw, 10)
    ids = {reserve(gw, a, 3)["id"], reserve(gw, b, 4)["id"]}
    body = gw.client.get("/keys/reserve", headers=gw.admin()).json()
    assert ids <= {r["id"] for r in body["reservations"]}
    assert body["count"] == len(body["reservations"]) and body["totalHeld"] >= 7


def test_a_hold_whose_ttl_runs_out_is_released_by_the_timer(gw: InProcessGateway) -> None:
    raw = new_key(gw, 100)
    rid = reserve(gw, raw, 60, ttlSeconds=10)["id"]
    assert gw.balance(raw) == 40
    gw.tick(time.time() + 11)  # the clock past the TTL: the background timer releases the hold
    assert gw.balance(raw) == 100
    assert listed(gw, raw) == []
    assert any(
        e["data"]["reservationId"] == rid and e["data"]["reason"] == "expired" and e["actor"] == "system"
        for e in gw.events("credits.released")
    )
    resp = gw.client.post("/keys/reserve/commit", headers=gw.admin(), json={"reservationId": rid})
    assert resp.status_code == 409 and "expired" in resp.json()["error"]


def test_reservations_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        raw = new_key(gw, 100)
        kept = reserve(gw, raw, 30, ttlSeconds=3600)["id"]
        committed = reserve(gw, raw, 20, ttlSeconds=3600)["id"]
        assert (
            gw.client.post("/keys/reserve/commit", headers=gw.admin(), json={"reservationId": committed}).status_code
            == 200
        )
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert gw.balance(raw) == 50
        assert [r["id"] for r in listed(gw, raw)] == [kept]
        again = gw.client.post("/keys/reserve/commit", headers=gw.admin(), json={"reservationId": committed})
        assert again.status_code == 409
        assert (
            gw.client.post("/keys/reserve/release", headers=gw.admin(), json={"reservationId": kept}).status_code == 200
        )
        assert gw.balance(raw) == 80 and spent(gw, raw) == 20


def test_a_rotated_keys_holds_follow_it_to_the_new_key(gw: InProcessGateway) -> None:
    raw = new_key(gw, 100)
    rid = reserve(gw, raw, 30)["id"]
    resp = gw.client.post("/keys/rotate", headers=gw.admin(), json={"key": raw})
    assert resp.status_code == 200, resp.text
    new = resp.json()["newKey"]
    assert [r["id"] for r in listed(gw, new)] == [rid]
    assert gw.client.post("/keys/reserve/release", headers=gw.admin(), json={"reservationId": rid}).status_code == 200
    assert gw.balance(new) == 100


def test_a_viewer_lists_holds_but_cannot_make_or_settle_them(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "rsv-viewer", "role": "viewer"})
    assert resp.status_code == 201, resp.text
    viewer = {"X-Admin-Key": resp.json()["key"]}
    raw = new_key(gw, 10)
    rid = reserve(gw, raw, 4)["id"]
    assert gw.client.get("/keys/reserve", params={"key": raw}, headers=viewer).status_code == 200
    assert gw.client.post("/keys/reserve", headers=viewer, json={"key": raw, "credits": 1}).status_code == 403
    for path in ("/keys/reserve/commit", "/keys/reserve/release"):
        assert gw.client.post(path, headers=viewer, json={"reservationId": rid}).status_code == 403
    assert gw.balance(raw) == 6 and [r["id"] for r in listed(gw, raw)] == [rid]


def rotate_as_if_the_process_died(state: str, raw: str) -> str:
    """Rotate `raw` in the stopped gateway's state file the way a crash right after the store's `rekey`
    leaves it: the rotation committed, no rotation listener ran. The new raw key."""
    store = SQLiteStore(Path(state))
    store.open()
    try:
        keys = KeyService(store)  # no rekey listeners: nothing followed the key
        return rotate(keys, keys.find(raw)).raw
    finally:
        store.close()


def test_holds_a_crash_left_on_a_rotated_key_go_to_its_replacement_at_startup(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        raw = new_key(gw, 100)
        released = reserve(gw, raw, 30, ttlSeconds=3600)["id"]
        committed = reserve(gw, raw, 20, ttlSeconds=3600)["id"]
    new = rotate_as_if_the_process_died(state, raw)
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert sorted(r["id"] for r in listed(gw, new)) == sorted([released, committed])
        assert (
            gw.client.post("/keys/reserve/release", headers=gw.admin(), json={"reservationId": released}).status_code
            == 200
        )
        assert (
            gw.client.post(
                "/keys/reserve/commit", headers=gw.admin(), json={"reservationId": committed, "credits": 5}
            ).status_code
            == 200
        )
        assert gw.balance(new) == 50 + 30 + 15 and spent(gw, new) == 5
        old = next(k for k in gw.client.get("/keys", headers=gw.admin()).json() if k["keyMasked"] == masked(raw))
        assert old["credits"] == 0  # the revoked key got nothing back


def test_settling_a_hold_left_on_a_rotated_key_moves_the_credits_of_its_replacement(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.open()
    try:
        keys = KeyService(store)
        service = Reservations(store, lambda *_, **__: None)
        old = keys.create("k", 100).record
        rid = service.reserve(old, 40, 60, None, "test")[0]["id"]
        new = rotate(keys, old).record  # the listener never ran (it failed, or the process died)
        done = service.release(rid, "test")
        assert done.balance == 100 and new.credits == 100 and old.credits == 0
        assert done.doc["keyHash"] == new.key_hash and done.doc["keyMasked"] == new.masked
    finally:
        store.close()


def test_the_timer_reads_no_reservation_until_one_is_due(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.open()
    try:
        record = KeyService(store).create("k", 10_000).record
        service = Reservations(store, lambda *_, **__: None)
        now = time.time()
        ids = [service.reserve(record, 1, 60 + i, None, "test", now=now)[0]["id"] for i in range(40)]
        reads: list[str] = []
        for name in ("doc_items", "doc_list", "doc_get"):
            real = getattr(store, name)
            monkeypatch.setattr(store, name, lambda *a, _n=name, _r=real: reads.append(_n) or _r(*a))
        service.tick(now + 30)
        assert reads == []  # nothing due: not one document read
        service.tick(now + 61.5)  # two holds are due
        assert reads == ["doc_get", "doc_get"]
        assert sorted(d["id"] for d in service.active(record.key_hash)) == sorted(ids[2:])
    finally:
        store.close()


def test_holds_a_restore_brings_back_are_listed_and_settle(gw: InProcessGateway) -> None:
    raw = new_key(gw, 100)
    rid = reserve(gw, raw, 30, ttlSeconds=3600)["id"]
    snapshot = gw.client.get("/admin/backup", headers=gw.admin()).json()
    assert gw.client.post("/keys/reserve/release", headers=gw.admin(), json={"reservationId": rid}).status_code == 200
    resp = gw.client.post("/admin/restore", headers=gw.admin(), json={"backup": snapshot, "mode": "overwrite"})
    assert resp.status_code == 200, resp.text
    assert gw.balance(raw) == 70 and [r["id"] for r in listed(gw, raw)] == [rid]
    assert gw.client.post("/keys/reserve/release", headers=gw.admin(), json={"reservationId": rid}).status_code == 200
    assert gw.balance(raw) == 100
