"""POST/GET /keys, /topup, /keys/revoke, /balance: happy paths and every way to get them wrong."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from paygate.core.records import KeyRecord
from paygate.keys.service import KeyService
from paygate.store.sqlite import SQLiteStore
from tests.inprocess import InProcessGateway
from tests.support import wait_until


def key_count(gw: InProcessGateway) -> int:
    return len(gw.client.get("/keys", headers=gw.admin()).json())


@pytest.mark.parametrize("headers", [{}, {"X-Admin-Key": "admin_wrong_wrong_wrong_wrong"}, {"X-Admin-Key": ""}])
def test_admin_endpoints_need_the_admin_key(gw: InProcessGateway, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/keys"),
        ("POST", "/keys"),
        ("POST", "/topup"),
        ("POST", "/keys/revoke"),
        ("GET", "/usage"),
        ("GET", "/status"),
    ]:
        resp = gw.client.request(method, path, headers=headers, json={})
        assert resp.status_code == 401, (method, path)
        assert "admin" in resp.json()["error"].lower()


def test_create_key_returns_the_key_once_and_lists_it_masked(gw: InProcessGateway) -> None:
    resp = gw.client.post(
        "/keys",
        headers=gw.admin(),
        json={
            "name": "acme",
            "credits": 50,
            "allowedTools": ["add"],
            "tags": {"plan": "pro"},
            "namespace": "acme",
            "expiresIn": 3600,
            "spendingLimit": 40,
            "ipAllowlist": ["10.0.0.0/8"],
            "quota": {"dailyCallLimit": 10},
        },
    )
    assert resp.status_code == 201
    body = resp.json()
    raw = body["key"]
    assert raw.startswith("pg_") and len(raw) == 51
    assert body["credits"] == 50 and body["namespace"] == "acme" and body["expiresAt"]
    listing = gw.client.get("/keys", headers=gw.admin())
    assert raw not in listing.text and gw.admin_key not in listing.text
    mine = [k for k in listing.json() if k["keyMasked"] == f"{raw[:7]}…{raw[-4:]}"]
    assert len(mine) == 1
    assert mine[0]["tags"] == {"plan": "pro"} and mine[0]["quota"]["dailyCallLimit"] == 10


@pytest.mark.parametrize(
    "body",
    [
        {"credits": -1},
        {"credits": "10"},
        {"credits": 1.5},
        {"name": ""},
        {"name": "x" * 201},
        {"unknownField": 1},
        {"expiresIn": 10, "expiresAt": "2099-01-01T00:00:00Z"},
        {"expiresAt": "not a date"},
        {"expiresAt": "2001-01-01T00:00:00Z"},
        {"ipAllowlist": ["999.1.1.1"]},
        {"namespace": "bad space"},
        {"quota": {"dailyCallLimit": -1}},
        {"allowedTools": "add"},
        {"allowedTools": [""]},
        {"deniedTools": ["t" * 201]},
        {"quota": {"monthlyCreditLimit": 10**13}},
        {"ipAllowlist": [" " * 10_000]},
    ],
)
def test_bad_create_input_is_a_400_that_creates_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = key_count(gw)
    resp = gw.client.post("/keys", headers=gw.admin(), json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert key_count(gw) == before


def test_key_fields_are_stored_as_the_policy_endpoints_store_them(gw: InProcessGateway) -> None:
    # The same field types as /keys/acl and /keys/ip: duplicates dropped, IPs in canonical form.
    resp = gw.client.post(
        "/keys",
        headers=gw.admin(),
        json={"allowedTools": ["add", "echo", "add"], "ipAllowlist": ["::ffff:10.0.0.1", "10.1.2.3/8"]},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["allowedTools"] == ["add", "echo"]
    assert resp.json()["ipAllowlist"] == ["10.0.0.1", "10.0.0.0/8"]


def test_non_json_body_is_a_400(gw: InProcessGateway) -> None:
    resp = gw.client.post("/keys", headers={**gw.admin(), "content-type": "application/json"}, content=b"{nope")
    assert resp.status_code == 400


def test_topup_adds_credits(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    resp = gw.client.post("/topup", headers=gw.admin(), json={"key": raw, "credits": 7})
    assert resp.status_code == 200
    assert resp.json()["credits"] == 12
    assert gw.balance(raw) == 12


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"key": "pg_doesnotexist0000", "credits": 5}, 404),
        ({"credits": 5}, 400),
        ({"key": "PLACEHOLDER", "credits": 0}, 400),
        ({"key": "PLACEHOLDER", "credits": -3}, 400),
        ({"key": "PLACEHOLDER", "credits": "5"}, 400),
    ],
)
def test_bad_topups_change_nothing(gw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    raw = gw.create_key(5)
    if body.get("key") == "PLACEHOLDER":
        body = {**body, "key": raw}
    assert gw.client.post("/topup", headers=gw.admin(), json=body).status_code == status
    assert gw.balance(raw) == 5


def test_revoked_keys_are_denied_and_cannot_be_revoked_twice(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    assert gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": raw}).json()["revoked"] is True
    denied = gw.call_tool("add", {"a": 1, "b": 1}, raw)
    assert denied["error"]["data"]["reason"] == "key_revoked"
    assert gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": raw}).status_code == 409
    assert gw.client.post("/topup", headers=gw.admin(), json={"key": raw, "credits": 1}).status_code == 409
    assert gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": "pg_nope_nope_nope"}).status_code == 404


def test_balance_is_self_service(gw: InProcessGateway) -> None:
    raw = gw.create_key(9, spendingLimit=5, tags={"team": "search"}, namespace="acme")
    gw.call_tool("add", {"a": 1, "b": 1}, raw)
    body = gw.client.get("/balance", headers={"X-API-Key": raw}).json()
    assert (body["credits"], body["totalSpent"], body["totalCalls"], body["remainingBudget"]) == (8, 1, 1, 4)
    assert (body["tags"], body["namespace"], body["ipAllowlist"]) == ({"team": "search"}, "acme", [])
    assert body["lastUsedAt"]
    bearer = gw.client.get("/balance", headers={"Authorization": f"Bearer {raw}"})
    assert bearer.json()["credits"] == 8
    assert gw.client.get("/balance").status_code == 401
    assert gw.client.get("/balance", headers={"X-API-Key": "pg_unknown"}).status_code == 401


def test_oversized_admin_body_is_refused(gw: InProcessGateway) -> None:
    before = key_count(gw)
    resp = gw.client.post("/keys", headers=gw.admin(), json={"name": "x", "tags": {"a": "y" * 1_100_000}})
    assert resp.status_code == 413
    assert key_count(gw) == before


def test_admin_actions_are_published_as_events_without_secrets(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    gw.client.post("/topup", headers=gw.admin(), json={"key": raw, "credits": 2})
    gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": raw})
    gw.client.get("/keys", headers={"X-Admin-Key": "admin_guess_guess_guess_guess"})
    masked = f"{raw[:7]}…{raw[-4:]}"
    wanted = {
        ("key.created", "admin"),
        ("key.topup", "admin"),
        ("key.revoked", "admin"),
        ("admin.auth_failed", "anonymous"),
    }
    wait_until(lambda: wanted <= {(e["type"], e["actor"]) for e in gw.events()}, what="the admin events")
    assert any(e["data"].get("keyMasked") == masked for e in gw.events("key.revoked"))
    log = gw.stderr()
    assert masked in log
    assert raw not in log and gw.admin_key not in log and "admin_guess_guess" not in log


def test_a_failed_write_leaves_the_key_record_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    # The store hands out its cached records: a status change whose write fails must not linger in
    # memory (the gate would act on a state the database never got). No gateway can be made to fail a
    # write on demand, so this drives the key service over a real store directly.
    store = SQLiteStore()
    store.open()
    keys = KeyService(store)
    made = keys.create("k", 5)
    record = made.record
    paused = keys.create("p", 5).record
    keys.suspend(paused, "checking")

    def broken(_: KeyRecord) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "update_key", broken)
    for change in (lambda: keys.revoke(made.raw), lambda: keys.suspend(record, "why"), lambda: keys.resume(paused)):
        with pytest.raises(sqlite3.OperationalError):
            change()
    assert (record.active, record.suspended, record.extra) == (True, False, {})
    assert paused.suspended and paused.extra["suspendReason"] == "checking"
    store.close()
