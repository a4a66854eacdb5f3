"""POST /keys/rotate, /keys/clone, /keys/transfer against a real gateway."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from paygate.core.keys import hash_key
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, wait_until


def post(gw: InProcessGateway, path: str, body: dict[str, Any]) -> httpx.Response:
    return gw.client.post(path, headers=gw.admin(), json=body)


def listing(gw: InProcessGateway) -> list[dict[str, Any]]:
    resp = gw.client.get("/keys", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return list(resp.json())


def view(gw: InProcessGateway, raw: str) -> dict[str, Any]:
    found = [k for k in listing(gw) if k["keyMasked"] == masked(raw)]
    assert len(found) == 1, found
    return found[0]


def set_alias(gw: InProcessGateway, key: str, alias: str) -> None:
    assert post(gw, "/keys/alias", {"key": key, "alias": alias}).status_code == 200


def denial_reason(gw: InProcessGateway, raw: str) -> str:
    reply = gw.call_tool("add", {"a": 1, "b": 2}, raw)
    assert "error" in reply, reply
    return str(reply["error"]["data"]["reason"])


# --- rotation -------------------------------------------------------------------------------------


def test_rotation_moves_credits_counters_and_policy_to_the_new_key(gw: InProcessGateway) -> None:
    old = gw.create_key(
        20,
        allowedTools=["add", "echo"],
        tags={"team": "a"},
        namespace="rot",
        spendingLimit=500,
        expiresIn=86400,
        quota={"dailyCallLimit": 100},
        ipAllowlist=["127.0.0.1"],
    )
    set_alias(gw, old, "rotate-me")
    assert post(gw, "/keys/notes", {"key": old, "text": "vip"}).status_code == 200
    assert "result" in gw.call_tool("add", {"a": 1, "b": 2}, old)
    before = view(gw, old)

    resp = post(gw, "/keys/rotate", {"key": "rotate-me"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    new = body["newKey"]
    assert new.startswith("pg_") and new != old
    assert body["oldKeyMasked"] == masked(old) and body["keyMasked"] == masked(new)
    assert body["message"] == "Key rotated" and body["credits"] == 19

    after = view(gw, new)
    for field in (
        "credits",
        "totalSpent",
        "totalCalls",
        "allowedTools",
        "tags",
        "namespace",
        "spendingLimit",
        "expiresAt",
        "quota",
        "ipAllowlist",
        "name",
    ):
        assert after[field] == before[field], field
    assert after["alias"] == "rotate-me"
    assert gw.client.get("/keys/notes", params={"key": "rotate-me"}, headers=gw.admin()).json()["count"] == 1
    retired = view(gw, old)
    assert retired["active"] is False and retired["credits"] == 0 and retired["alias"] is None


def test_the_old_key_is_dead_at_once_and_the_new_one_works(gw: InProcessGateway) -> None:
    old = gw.create_key(10)
    new = post(gw, "/keys/rotate", {"key": old}).json()["newKey"]
    assert denial_reason(gw, old) == "key_revoked"
    assert gw.client.get("/balance", headers={"X-API-Key": old}).status_code == 401
    assert "result" in gw.call_tool("add", {"a": 1, "b": 2}, new)
    assert gw.balance(new) == 9


def test_quota_counters_follow_the_rotated_key(gw: InProcessGateway) -> None:
    old = gw.create_key(10, quota={"dailyCallLimit": 2})
    for _ in range(2):
        assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, old)
    new = post(gw, "/keys/rotate", {"key": old}).json()["newKey"]
    assert denial_reason(gw, new) == "quota_exceeded"


def test_rotation_publishes_masked_keys_only(gw: InProcessGateway) -> None:
    old = gw.create_key(3)
    new = post(gw, "/keys/rotate", {"key": old}).json()["newKey"]
    events = [e for e in gw.events("key.rotated") if e["data"]["oldKeyMasked"] == masked(old)]
    assert len(events) == 1
    assert events[0]["data"]["newKeyMasked"] == masked(new) and events[0]["actor"] == "admin"
    assert new not in gw.stderr() and old not in gw.stderr()


def test_a_revoked_key_cannot_be_rotated(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    assert post(gw, "/keys/revoke", {"key": raw}).status_code == 200
    before = len(listing(gw))
    resp = post(gw, "/keys/rotate", {"key": raw})
    assert resp.status_code == 409 and "revoked" in resp.json()["error"]
    assert len(listing(gw)) == before


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"key": "pg_unknown_unknown_unknown"}, 404),
        ({"key": "no-such-alias"}, 404),
        ({}, 400),
        ({"key": ""}, 400),
        ({"key": 5}, 400),
        ({"key": "PLACEHOLDER", "extra": 1}, 400),
    ],
)
def test_bad_rotation_requests_change_nothing(gw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    raw = gw.create_key(5)
    body = {k: (raw if v == "PLACEHOLDER" else v) for k, v in body.items()}
    before = len(listing(gw))
    assert post(gw, "/keys/rotate", body).status_code == status
    assert len(listing(gw)) == before and gw.balance(raw) == 5
    assert not [e for e in gw.events("key.rotated") if e["data"]["oldKeyMasked"] == masked(raw)]


# --- cloning --------------------------------------------------------------------------------------


def test_a_clone_copies_the_config_with_fresh_counters_and_no_alias(gw: InProcessGateway) -> None:
    source = gw.create_key(
        30,
        allowedTools=["add"],
        deniedTools=["fail"],
        tags={"env": "prod"},
        namespace="clones",
        spendingLimit=100,
        expiresIn=3600,
        quota={"monthlyCallLimit": 9},
        ipAllowlist=["127.0.0.0/8"],
    )
    set_alias(gw, source, "clone-source")
    assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, source)
    resp = post(gw, "/keys/clone", {"key": "clone-source"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    clone = body["key"]
    assert clone != source and body["message"] == "Key cloned" and body["clonedFrom"] == masked(source)
    src, cl = view(gw, source), view(gw, clone)
    for field in (
        "allowedTools",
        "deniedTools",
        "tags",
        "namespace",
        "spendingLimit",
        "expiresAt",
        "quota",
        "ipAllowlist",
    ):
        assert cl[field] == src[field], field
    assert (cl["credits"], cl["totalSpent"], cl["totalCalls"], cl["lastUsedAt"]) == (29, 0, 0, None)
    assert cl["alias"] is None and cl["name"] == "test-clone"
    assert gw.balance(source) == 29  # the source keeps its own credits
    assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, clone)
    assert gw.call_tool("fail", {}, clone)["error"]["data"]["reason"] == "tool_not_allowed"


def test_clone_overrides_name_credits_tags_and_namespace(gw: InProcessGateway) -> None:
    source = gw.create_key(30, tags={"env": "prod", "tier": "gold"}, namespace="one")
    body = post(
        gw,
        "/keys/clone",
        {"key": source, "name": "staging", "credits": 0, "tags": {"env": "staging"}, "namespace": "two"},
    ).json()
    assert (body["name"], body["credits"], body["tags"], body["namespace"]) == ("staging", 0, {"env": "staging"}, "two")


def test_a_suspended_key_clones_into_an_active_one(gw: InProcessGateway) -> None:
    source = gw.create_key(4)
    bulk = post(gw, "/keys/bulk", {"operations": [{"action": "suspend", "key": source}]}).json()
    assert bulk["succeeded"] == 1
    clone = post(gw, "/keys/clone", {"key": source}).json()
    assert clone["suspended"] is False
    assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, clone["key"])
    assert denial_reason(gw, source) == "key_suspended"


def test_cloning_publishes_an_event(gw: InProcessGateway) -> None:
    source = gw.create_key(2)
    clone = post(gw, "/keys/clone", {"key": source}).json()["key"]
    events = [e for e in gw.events("key.cloned") if e["data"]["keyMasked"] == masked(clone)]
    assert len(events) == 1 and events[0]["data"]["sourceKeyMasked"] == masked(source)
    assert clone not in gw.stderr()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"key": "pg_unknown_unknown_unknown"}, 404),
        ({}, 400),
        ({"key": "PLACEHOLDER", "credits": -1}, 400),
        ({"key": "PLACEHOLDER", "credits": 1.5}, 400),
        ({"key": "PLACEHOLDER", "namespace": "bad space"}, 400),
        ({"key": "PLACEHOLDER", "tags": {"t": "x" * 101}}, 400),
        ({"key": "PLACEHOLDER", "name": ""}, 400),
        ({"key": "PLACEHOLDER", "alias": "copy"}, 400),
        ({"key": "REVOKED"}, 409),
    ],
)
def test_bad_clone_requests_create_nothing(gw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    raw, revoked = gw.create_key(5), gw.create_key(5)
    post(gw, "/keys/revoke", {"key": revoked})
    swap = {"PLACEHOLDER": raw, "REVOKED": revoked}
    body = {k: swap.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    before = len(listing(gw))
    assert post(gw, "/keys/clone", body).status_code == status
    assert len(listing(gw)) == before


# --- transfers ------------------------------------------------------------------------------------


def test_a_transfer_moves_exactly_the_credits_between_keys_named_by_alias(gw: InProcessGateway) -> None:
    a, b = gw.create_key(100), gw.create_key(5)
    set_alias(gw, a, "payer")
    resp = post(gw, "/keys/transfer", {"from": "payer", "to": b, "credits": 30, "memo": "monthly"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "transferred": 30,
        "from": {"keyMasked": masked(a), "balance": 70},
        "to": {"keyMasked": masked(b), "balance": 35},
        "memo": "monthly",
        "message": "Transferred 30 credits",
    }
    assert (gw.balance(a), gw.balance(b)) == (70, 35)
    event = [e for e in gw.events("key.credits_transferred") if e["data"]["fromKeyMasked"] == masked(a)]
    assert event[0]["data"] == {
        "fromKeyMasked": masked(a),
        "toKeyMasked": masked(b),
        "credits": 30,
        "fromBalance": 70,
        "toBalance": 35,
        "memo": "monthly",
    }


def test_fractional_credits_are_floored_as_the_reference_documents(gw: InProcessGateway) -> None:
    a, b = gw.create_key(10), gw.create_key(0)
    resp = post(gw, "/keys/transfer", {"from": a, "to": b, "credits": 2.9})
    assert resp.status_code == 200 and resp.json()["transferred"] == 2, resp.text
    assert (gw.balance(a), gw.balance(b)) == (8, 2)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"from": "A", "to": "A", "credits": 1}, 400, "same key"),
        ({"from": "A", "to": "self-alias", "credits": 1}, 400, "same key"),
        ({"from": "A", "to": "B", "credits": 11}, 400, "Insufficient"),
        ({"from": "A", "to": "B", "credits": 0}, 400, "Invalid request"),
        ({"from": "A", "to": "B", "credits": -5}, 400, "Invalid request"),
        ({"from": "A", "to": "B", "credits": 0.5}, 400, "Invalid request"),  # floored to 0
        ({"from": "A", "to": "B", "credits": "3"}, 400, "Invalid request"),
        ({"from": "A", "to": "B"}, 400, "Invalid request"),
        ({"from": "A", "to": "B", "credits": 1, "memo": "m" * 501}, 400, "Invalid request"),
        ({"from": "A", "to": "pg_unknown_unknown", "credits": 1}, 404, "not found"),
        ({"from": "pg_unknown_unknown", "to": "B", "credits": 1}, 404, "not found"),
        ({"from": "A", "to": "REVOKED", "credits": 1}, 409, "revoked"),
        ({"from": "REVOKED", "to": "B", "credits": 1}, 409, "revoked"),
    ],
)
def test_bad_transfers_move_nothing(gw: InProcessGateway, body: dict[str, Any], status: int, message: str) -> None:
    a, b, revoked = gw.create_key(10), gw.create_key(10), gw.create_key(10)
    alias = f"self-{a[-8:]}"
    set_alias(gw, a, alias)
    post(gw, "/keys/revoke", {"key": revoked})
    swap = {"A": a, "B": b, "REVOKED": revoked, "self-alias": alias}
    body = {k: swap.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    resp = post(gw, "/keys/transfer", body)
    assert resp.status_code == status, resp.text
    assert message in resp.json()["error"]
    assert (gw.balance(a), gw.balance(b)) == (10, 10)
    mine = {masked(a), masked(b), masked(revoked)}
    assert not [
        e for e in gw.events("key.credits_transferred") if {e["data"]["fromKeyMasked"], e["data"]["toKeyMasked"]} & mine
    ]
    history = gw.client.get("/keys/credit-history", params={"key": a}, headers=gw.admin()).json()
    assert [e["type"] for e in history["entries"]] == ["initial"], history


def test_an_expired_key_can_neither_send_nor_receive(gw: InProcessGateway) -> None:
    a, expiring = gw.create_key(10), gw.create_key(10, expiresIn=1)
    wait_until(lambda: view(gw, expiring)["expired"], what="the key to expire")
    for body in ({"from": a, "to": expiring, "credits": 1}, {"from": expiring, "to": a, "credits": 1}):
        resp = post(gw, "/keys/transfer", body)
        assert resp.status_code == 409 and "expired" in resp.json()["error"]
    assert gw.balance(a) == 10


# --- persistence ----------------------------------------------------------------------------------


def ledger_sum(db_path: Path, raw: str) -> tuple[int, list[str]]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT delta, kind FROM ledger WHERE key_hash = ? ORDER BY id", (hash_key(raw),)).fetchall()
    return sum(r[0] for r in rows), [r[1] for r in rows]


def test_rotation_clone_and_transfer_survive_a_restart_and_match_the_ledger(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_inprocess_gateway(*args, state_file=state) as gw:
        old, other = gw.create_key(50, tags={"k": "v"}), gw.create_key(1)
        assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, old)
        new = post(gw, "/keys/rotate", {"key": old}).json()["newKey"]
        assert post(gw, "/keys/transfer", {"from": new, "to": other, "credits": 9}).status_code == 200
        clone = post(gw, "/keys/clone", {"key": new, "credits": 3}).json()["key"]
    assert ledger_sum(Path(state), old) == (0, ["create", "charge", "rotate_out"])
    assert ledger_sum(Path(state), new) == (40, ["rotate_in", "transfer_out"])
    assert ledger_sum(Path(state), other) == (10, ["create", "transfer_in"])
    assert ledger_sum(Path(state), clone)[0] == 3
    with running_inprocess_gateway(*args, state_file=state) as gw:
        assert (gw.balance(new), gw.balance(other), gw.balance(clone)) == (40, 10, 3)
        assert gw.client.get("/balance", headers={"X-API-Key": new}).json()["totalCalls"] == 1
        assert view(gw, clone)["tags"] == {"k": "v"}
        assert denial_reason(gw, old) == "key_revoked"


def test_rate_limit_windows_follow_the_rotated_key() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "2") as gw:
        old = gw.create_key(10)
        for _ in range(2):
            assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, old)
        new = post(gw, "/keys/rotate", {"key": old}).json()["newKey"]
        assert denial_reason(gw, new) == "rate_limited"
        assert gw.balance(new) == 8
