"""POST /keys/auto-topup, and the refill that follows a charge leaving a key below its threshold."""

from __future__ import annotations

import functools
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from paygate.keys.auto_topup import AutoTopup, today_count
from paygate.keys.service import KeyService
from paygate.store.sqlite import SQLiteStore
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, wait_until


def configure(gw: InProcessGateway, key: str, **body: Any) -> Any:
    return gw.client.post("/keys/auto-topup", headers=gw.admin(), json={"key": key, **body})


def topups(gw: InProcessGateway, raw: str) -> list[dict[str, Any]]:
    return [e for e in gw.events("key.auto_topped_up") if e["data"]["keyMasked"] == masked(raw)]


def stored_config(gw: InProcessGateway, raw: str) -> Any:
    keys = gw.client.get("/keys/export", headers=gw.admin()).json()["keys"]
    return next(k for k in keys if k["keyMasked"] == masked(raw))["autoTopup"]


def topped_up(gw: InProcessGateway, raw: str, times: int) -> bool:
    return len(topups(gw, raw)) == times


def spend_one(gw: InProcessGateway, raw: str) -> None:
    assert "result" in gw.call_tool("echo", {"text": "x"}, raw)


def test_configuring_auto_topup_answers_the_config_and_publishes_an_event(gw: InProcessGateway) -> None:
    raw = gw.create_key(100)
    resp = configure(gw, raw, threshold=100, amount=500, maxDaily=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["autoTopup"] == {"threshold": 100, "amount": 500, "maxDaily": 10, "todayCount": 0}
    assert body["message"] == "Auto-topup enabled: add 500 credits when balance drops below 100 (max 10/day)"
    assert stored_config(gw, raw) == {"threshold": 100, "amount": 500, "maxDaily": 10}
    events = [e for e in gw.events("key.auto_topup_configured") if e["data"]["keyMasked"] == masked(raw)]
    assert len(events) == 1 and events[0]["data"]["enabled"] is True and events[0]["data"]["amount"] == 500
    assert raw not in gw.stderr()


def test_a_charge_that_leaves_the_key_below_the_threshold_tops_it_up(gw: InProcessGateway) -> None:
    raw = gw.create_key(4)
    assert configure(gw, raw, threshold=3, amount=10).status_code == 200
    spend_one(gw, raw)  # 3: not below the threshold
    assert gw.balance(raw) == 3 and topups(gw, raw) == []
    spend_one(gw, raw)  # 2: below, refilled
    wait_until(lambda: gw.balance(raw) == 12, what="the auto-topup")
    [event] = topups(gw, raw)
    assert event["data"]["amount"] == 10 and event["data"]["newBalance"] == 12 and event["actor"] == "system"


def test_max_daily_caps_the_number_of_topups_per_day(gw: InProcessGateway) -> None:
    raw = gw.create_key(2)
    assert configure(gw, raw, threshold=2, amount=1, maxDaily=2).status_code == 200
    for n in (1, 2):
        spend_one(gw, raw)
        wait_until(functools.partial(topped_up, gw, raw, n), what=f"auto-topup #{n}")
        assert gw.balance(raw) == 2
    spend_one(gw, raw)
    spend_one(gw, raw)  # the answer to this call comes after any refill the first one scheduled
    assert gw.balance(raw) == 0 and len(topups(gw, raw)) == 2
    assert configure(gw, raw, threshold=2, amount=1, maxDaily=2).json()["autoTopup"]["todayCount"] == 2


def test_disabling_stops_the_refills(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    assert configure(gw, raw, threshold=3, amount=5).status_code == 200
    resp = configure(gw, raw, disable=True)
    assert resp.status_code == 200 and resp.json()["autoTopup"] is None
    assert stored_config(gw, raw) is None
    spend_one(gw, raw)
    spend_one(gw, raw)
    assert gw.balance(raw) == 1 and topups(gw, raw) == []
    assert any(
        e["data"]["keyMasked"] == masked(raw) and e["data"]["enabled"] is False
        for e in gw.events("key.auto_topup_configured")
    )


@pytest.mark.parametrize(
    "body",
    [
        {"threshold": -1, "amount": 5},
        {"threshold": 1, "amount": 0},
        {"threshold": 1},
        {"amount": 5},
        {"threshold": "1", "amount": 5},
        {"threshold": 1, "amount": 5, "maxDaily": -1},
        {"threshold": 1, "amount": 5, "maxDaily": 1001},
        {"disable": True, "threshold": 1},
        {"threshold": 1, "amount": 5, "surprise": 1},
        {"threshold": 1.5, "amount": 5},
        {},
    ],
)
def test_bad_input_is_a_400_that_changes_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    raw = gw.create_key(10)
    assert configure(gw, raw, threshold=1, amount=2, maxDaily=3).status_code == 200
    resp = configure(gw, raw, **body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert stored_config(gw, raw) == {"threshold": 1, "amount": 2, "maxDaily": 3}


def test_unknown_keys_are_404_and_revoked_keys_409(gw: InProcessGateway) -> None:
    assert configure(gw, "pg_" + "0" * 48, threshold=1, amount=1).status_code == 404
    raw = gw.create_key(1)
    assert gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": raw}).status_code == 200
    assert configure(gw, raw, threshold=1, amount=1).status_code == 409


def test_a_key_is_named_by_its_alias_too(gw: InProcessGateway) -> None:
    raw = "pg_" + secrets.token_hex(24)
    resp = gw.client.post(
        "/keys/import", headers=gw.admin(), json={"keys": [{"key": raw, "credits": 2, "alias": "topup-alias"}]}
    )
    assert resp.status_code == 200
    assert configure(gw, "topup-alias", threshold=2, amount=7).status_code == 200
    spend_one(gw, raw)
    wait_until(lambda: gw.balance(raw) == 8, what="the auto-topup")


def test_config_and_the_daily_count_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_inprocess_gateway(*args, state_file=state) as gw:
        raw = gw.create_key(2)
        assert configure(gw, raw, threshold=2, amount=1, maxDaily=1).status_code == 200
        spend_one(gw, raw)
        wait_until(lambda: len(topups(gw, raw)) == 1, what="the first auto-topup")
    with running_inprocess_gateway(*args, state_file=state) as gw:
        assert stored_config(gw, raw) == {"threshold": 2, "amount": 1, "maxDaily": 1}
        spend_one(gw, raw)
        spend_one(gw, raw)
        assert gw.balance(raw) == 0 and topups(gw, raw) == []  # today's one topup was used before the restart


def test_a_crash_during_a_topup_never_lets_the_daily_cap_be_exceeded(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    store.open()
    record = KeyService(store).create("k", 0).record
    service = AutoTopup(store, lambda *_, **__: None)
    service.configure(record, threshold=5, amount=10, max_daily=1)

    def dies(*_: Any) -> Any:
        raise SystemExit("the process died mid-topup")

    store.topup_below = dies  # type: ignore[method-assign]
    now = time.time()
    with pytest.raises(SystemExit):
        service.maybe_topup(record.key_hash, now)
    store.close()
    store = SQLiteStore(path)  # restart
    store.open()
    try:
        assert AutoTopup(store, lambda *_, **__: None).maybe_topup(record.key_hash, now) == 0
        reopened = store.get_key(record.key_hash)
        assert reopened is not None and reopened.credits == 0 and today_count(reopened, now) == 1
    finally:
        store.close()
