"""POST /keys/bulk against a real gateway: per-operation results, and a bad envelope runs nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked


def bulk(gw: InProcessGateway, operations: Any) -> httpx.Response:
    return gw.client.post("/keys/bulk", headers=gw.admin(), json={"operations": operations})


def key_count(gw: InProcessGateway) -> int:
    return len(gw.client.get("/keys", headers=gw.admin()).json())


def test_each_operation_gets_its_own_result_and_a_bad_one_stops_nothing(gw: InProcessGateway) -> None:
    existing, old, to_suspend = gw.create_key(500), gw.create_key(1), gw.create_key(3)
    gw.client.post("/keys/alias", headers=gw.admin(), json={"key": existing, "alias": "bulk-target"})
    resp = bulk(
        gw,
        [
            {"action": "create", "name": "api-key-1", "credits": 500, "tags": {"env": "prod"}},
            {"action": "explode", "key": existing},
            {"action": "topup", "key": "bulk-target", "credits": 1000},
            {"action": "topup", "key": existing, "credits": -4},
            {"action": "revoke", "key": old},
            {"action": "revoke", "key": old},
            {"action": "topup", "key": "pg_unknown_unknown", "credits": 1},
            {"action": "suspend", "key": to_suspend, "reason": "abuse"},
            {"action": "create", "name": "api-key-2", "credits": 200},
            {"action": ["topup"], "key": existing, "credits": 1},
            {"key": existing, "credits": 1},
        ],
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["total"], body["succeeded"], body["failed"]) == (11, 5, 6)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(11))
    assert [r["success"] for r in results] == [True, False, True, False, True, False, False, True, True, False, False]
    assert results[9]["action"] is None and results[10]["action"] is None
    assert results[0]["result"]["name"] == "api-key-1" and results[0]["result"]["credits"] == 500
    assert "explode" in results[1]["error"]
    assert results[2]["result"] == {"keyMasked": masked(existing), "creditsAdded": 1000, "newBalance": 1500}
    assert results[3]["error"].startswith("Invalid request: credits")
    assert results[5]["status"] == 409 and results[6]["status"] == 404
    assert gw.balance(existing) == 1500
    created = results[0]["result"]["key"]
    assert gw.balance(created) == 500 and gw.balance(results[8]["result"]["key"]) == 200
    assert gw.call_tool("add", {"a": 1, "b": 1}, old)["error"]["data"]["reason"] == "key_revoked"
    assert gw.call_tool("add", {"a": 1, "b": 1}, to_suspend)["error"]["data"]["reason"] == "key_suspended"


def test_resume_makes_a_suspended_key_work_again(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    assert bulk(gw, [{"action": "suspend", "key": raw}]).json()["succeeded"] == 1
    again = bulk(gw, [{"action": "suspend", "key": raw}]).json()
    assert again["results"][0]["status"] == 409
    resumed = bulk(gw, [{"action": "resume", "key": raw}]).json()
    assert resumed["results"][0]["result"]["suspended"] is False
    assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, raw)
    assert bulk(gw, [{"action": "resume", "key": raw}]).json()["results"][0]["status"] == 409


def test_bulk_create_accepts_every_key_field_and_templates(gw: InProcessGateway) -> None:
    gw.client.post("/keys/templates", headers=gw.admin(), json={"name": "bulk-tpl", "credits": 42, "namespace": "bulk"})
    body = bulk(
        gw,
        [
            {"action": "create", "template": "bulk-tpl"},
            {"action": "create", "template": "missing-tpl"},
            {"action": "create", "allowedTools": ["echo"], "expiresIn": 0},
        ],
    ).json()
    assert body["results"][0]["result"]["credits"] == 42
    assert body["results"][1]["status"] == 404
    assert body["results"][2]["error"].startswith("Invalid request: expiresIn")


def test_successful_operations_publish_their_events_marked_bulk(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    body = bulk(
        gw,
        [
            {"action": "topup", "key": raw, "credits": 2},
            {"action": "suspend", "key": raw},
            {"action": "resume", "key": raw},
            {"action": "revoke", "key": raw},
            {"action": "revoke", "key": raw},
        ],
    ).json()
    mine = [e for e in gw.events() if e["data"].get("keyMasked") == masked(raw) and e["data"].get("bulk")]
    assert [e["type"] for e in mine] == ["key.topup", "key.suspended", "key.resumed", "key.revoked"]
    summary = gw.events("key.bulk")[-1]["data"]
    assert summary == {"total": 5, "succeeded": body["succeeded"], "failed": 1}
    created = bulk(gw, [{"action": "create", "credits": 1}]).json()["results"][0]["result"]["key"]
    assert created not in gw.stderr()


@pytest.mark.parametrize(
    "operations",
    [
        [],
        [{"action": "create"}] * 101,
        ["create"],
        [{"action": "create"}, 5],
        None,
        {"action": "create"},
    ],
)
def test_a_malformed_envelope_is_a_400_that_runs_nothing(gw: InProcessGateway, operations: Any) -> None:
    before = key_count(gw)
    resp = bulk(gw, operations)
    assert resp.status_code == 400, resp.text
    assert key_count(gw) == before


def test_exactly_100_operations_are_allowed(gw: InProcessGateway) -> None:
    raw = gw.create_key(0)
    body = bulk(gw, [{"action": "topup", "key": raw, "credits": 1}] * 100).json()
    assert body["succeeded"] == 100 and gw.balance(raw) == 100


def test_an_unknown_field_in_the_envelope_is_a_400(gw: InProcessGateway) -> None:
    resp = gw.client.post("/keys/bulk", headers=gw.admin(), json={"operations": [{"action": "create"}], "dry": 1})
    assert resp.status_code == 400


def test_bulk_results_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        target = gw.create_key(10)
        body = bulk(
            gw,
            [
                {"action": "create", "credits": 7, "name": "durable"},
                {"action": "topup", "key": target, "credits": 5},
                {"action": "suspend", "key": target},
            ],
        ).json()
        created = body["results"][0]["result"]["key"]
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert gw.balance(created) == 7 and gw.balance(target) == 15
        assert gw.call_tool("add", {"a": 1, "b": 1}, target)["error"]["data"]["reason"] == "key_suspended"


def test_an_operation_the_disk_refuses_is_reported_and_the_others_keep_their_results(tmp_path: Path) -> None:
    """A write that fails (a full disk, simulated with a trigger) fails that operation alone: the keys
    created before and after it are returned with their raw values, so none is created unseen."""
    import sqlite3

    state = tmp_path / "state.db"
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=str(state)) as gw:
        target = gw.create_key(1)
        with sqlite3.connect(state) as db:
            db.execute(
                "CREATE TRIGGER no_topups BEFORE INSERT ON ledger WHEN NEW.kind = 'topup' "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        resp = bulk(
            gw,
            [
                {"action": "create", "name": "a", "credits": 3},
                {"action": "topup", "key": target, "credits": 5},
                {"action": "create", "name": "b", "credits": 4},
            ],
        )
        assert resp.status_code == 200, resp.text
        first, failed, last = resp.json()["results"]
        assert failed["success"] is False and failed["status"] == 500
        assert gw.balance(target) == 1
        assert first["success"] and last["success"]
        assert gw.balance(first["result"]["key"]) == 3 and gw.balance(last["result"]["key"]) == 4
