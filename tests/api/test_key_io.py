"""GET /keys/export and POST /keys/import: hashes out, keys that still work back in, conflicts handled."""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked


def raw_key() -> str:
    return "pg_" + secrets.token_hex(24)


def do_import(gw: InProcessGateway, keys: list[dict[str, Any]], mode: str | None = None) -> Any:
    body: dict[str, Any] = {"keys": keys}
    if mode is not None:
        body["mode"] = mode
    return gw.client.post("/keys/import", headers=gw.admin(), json=body)


def export(gw: InProcessGateway, **params: str) -> dict[str, Any]:
    resp = gw.client.get("/keys/export", params=params, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def entry_of(gw: InProcessGateway, raw: str) -> dict[str, Any]:
    return next(e for e in export(gw)["keys"] if e["keyMasked"] == masked(raw))


def listed_count(gw: InProcessGateway) -> int:
    return len(gw.client.get("/keys", headers=gw.admin()).json())


def test_export_carries_every_field_and_the_hash_but_never_a_raw_key(gw: InProcessGateway) -> None:
    raw = gw.create_key(
        42,
        name="exported",
        tags={"plan": "pro"},
        namespace="io-ns",
        allowedTools=["echo"],
        expiresIn=86400,
        spendingLimit=7,
    )
    resp = gw.client.get("/keys/export", headers=gw.admin())
    assert "attachment" in resp.headers["content-disposition"]
    assert raw not in resp.text
    doc = resp.json()
    assert doc["version"] == 1 and doc["count"] == len(doc["keys"]) and doc["exportedAt"].endswith("Z")
    entry = entry_of(gw, raw)
    assert entry["keyHash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert entry["name"] == "exported" and entry["credits"] == 42 and entry["tags"] == {"plan": "pro"}
    assert entry["namespace"] == "io-ns" and entry["allowedTools"] == ["echo"] and entry["spendingLimit"] == 7
    assert entry["expiresAt"] and entry["active"] is True and "key" not in entry
    assert gw.events("keys.exported")


def test_export_filters_by_namespace_and_active_only(gw: InProcessGateway) -> None:
    live = gw.create_key(1, namespace="filter-ns")
    dead = gw.create_key(1, namespace="filter-ns")
    gw.create_key(1, namespace="other-ns")
    assert gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": dead}).status_code == 200
    everything = {e["keyMasked"] for e in export(gw, namespace="filter-ns")["keys"]}
    assert everything == {masked(live), masked(dead)}
    active = {e["keyMasked"] for e in export(gw, namespace="filter-ns", activeOnly="true")["keys"]}
    assert active == {masked(live)}


def test_csv_export_is_a_spreadsheet_with_formulas_defused(gw: InProcessGateway) -> None:
    raw = gw.create_key(9, name='=HYPERLINK("http://evil")', namespace="csv-ns")
    resp = gw.client.get("/keys/export", params={"format": "csv", "namespace": "csv-ns"}, headers=gw.admin())
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert raw not in resp.text
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert len(rows) == 1
    assert rows[0]["keyMasked"] == masked(raw) and rows[0]["credits"] == "9"
    assert rows[0]["name"].startswith("'=")


@pytest.mark.parametrize("params", [{"format": "xml"}, {"activeOnly": "maybe"}, {"namespace": ""}])
def test_bad_export_parameters_are_400s(gw: InProcessGateway, params: dict[str, str]) -> None:
    assert gw.client.get("/keys/export", params=params, headers=gw.admin()).status_code == 400


def test_an_imported_raw_key_works_at_the_gate(gw: InProcessGateway) -> None:
    raw = raw_key()
    resp = do_import(gw, [{"key": raw, "name": "migrated", "credits": 5, "tags": {"from": "node"}}])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body == {
        "total": 1,
        "imported": 1,
        "overwritten": 0,
        "skipped": 0,
        "errors": 0,
        "mode": "skip",
        "results": [{"key": masked(raw), "name": "migrated", "status": "imported"}],
    }
    assert gw.balance(raw) == 5
    assert "result" in gw.call_tool("echo", {"text": "hi"}, raw)
    assert gw.balance(raw) == 4
    events = [e for e in gw.events("keys.imported") if masked(raw) in e["data"]["keys"]]
    assert len(events) == 1 and events[0]["data"]["imported"] == 1
    assert raw not in gw.stderr()


def test_an_export_imported_into_a_fresh_gateway_restores_keys_that_still_work(gw: InProcessGateway) -> None:
    raw = gw.create_key(30, name="round-trip", namespace="rt-ns", tags={"t": "1"}, allowedTools=["echo"])
    gw.client.post(
        "/keys/auto-topup", headers=gw.admin(), json={"key": raw, "threshold": 2, "amount": 10, "maxDaily": 1}
    )
    document = export(gw, namespace="rt-ns")
    assert document["keys"][0]["autoTopup"] == {"threshold": 2, "amount": 10, "maxDaily": 1}
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as fresh:
        resp = fresh.client.post("/keys/import", headers=fresh.admin(), json=document)  # posted back as is
        assert resp.status_code == 200, resp.text
        assert resp.json()["imported"] == 1
        assert fresh.balance(raw) == 30
        assert "result" in fresh.call_tool("echo", {"text": "x"}, raw)
        assert "error" in fresh.call_tool("add", {"a": 1, "b": 2}, raw)  # the ACL came along
        again = entry_of(fresh, raw)
        before = document["keys"][0]
        for field in ("keyHash", "name", "namespace", "tags", "allowedTools", "autoTopup", "createdAt"):
            assert again[field] == before[field], field


def test_skip_mode_leaves_existing_keys_alone(gw: InProcessGateway) -> None:
    raw = gw.create_key(10, name="original")
    fresh = raw_key()
    resp = do_import(gw, [{"key": raw, "name": "replacement", "credits": 99}, {"key": fresh, "credits": 1}])
    assert resp.status_code == 200
    assert [r["status"] for r in resp.json()["results"]] == ["skipped", "imported"]
    assert gw.balance(raw) == 10 and entry_of(gw, raw)["name"] == "original"


def test_overwrite_mode_replaces_policy_and_brings_the_balance_to_the_imported_value(gw: InProcessGateway) -> None:
    raw = gw.create_key(10, name="original", tags={"a": "1"})
    resp = do_import(gw, [{"key": raw, "name": "replacement", "credits": 3, "tags": {"b": "2"}}], "overwrite")
    assert resp.status_code == 200 and resp.json()["overwritten"] == 1
    entry = entry_of(gw, raw)
    assert entry["name"] == "replacement" and entry["tags"] == {"b": "2"} and gw.balance(raw) == 3
    resp = do_import(gw, [{"key": raw, "credits": 50}], "overwrite")
    assert resp.status_code == 200 and gw.balance(raw) == 50


def test_overwrite_never_brings_a_revoked_key_back(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    assert gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": raw}).status_code == 200
    fresh = raw_key()
    resp = do_import(gw, [{"key": raw, "credits": 500, "active": True}, {"key": fresh, "credits": 1}], "overwrite")
    assert resp.status_code == 200, resp.text
    assert [r["status"] for r in resp.json()["results"]] == ["error", "imported"]
    assert "revoked" in resp.json()["results"][0]["error"]
    entry = entry_of(gw, raw)
    assert entry["active"] is False and entry["credits"] == 10
    assert gw.client.get("/balance", headers={"X-API-Key": raw}).status_code != 200
    again = do_import(gw, [{**entry, "credits": 7}], "overwrite")  # its own export entry: a round trip
    assert again.status_code == 200 and again.json()["results"][0]["status"] == "skipped"
    assert entry_of(gw, raw)["credits"] == 10


def test_error_mode_aborts_the_whole_import_on_one_conflict(gw: InProcessGateway) -> None:
    existing = gw.create_key(10)
    fresh = raw_key()
    before = listed_count(gw)
    resp = do_import(gw, [{"key": fresh, "credits": 1}, {"key": existing, "credits": 99}], "error")
    assert resp.status_code == 409
    assert resp.json()["conflicts"][0]["key"] == masked(existing)
    assert listed_count(gw) == before and gw.balance(existing) == 10
    assert do_import(gw, [{"key": fresh, "credits": 1}], "error").status_code == 200


def test_an_alias_owned_by_another_key_is_a_per_entry_error(gw: InProcessGateway) -> None:
    owner, other = raw_key(), raw_key()
    assert do_import(gw, [{"key": owner, "alias": "io-taken"}]).status_code == 200
    resp = do_import(gw, [{"key": other, "alias": "io-taken"}])
    assert resp.status_code == 200
    result = resp.json()["results"][0]
    assert result["status"] == "error" and "alias" in result["error"]
    assert gw.client.get("/balance", headers={"X-API-Key": other}).status_code != 200
    assert do_import(gw, [{"key": other, "alias": "io-taken"}], "error").status_code == 409


def test_an_alias_equal_to_an_existing_key_is_refused() -> None:
    legacy = "legacy_key_0001"  # handed out before pg_ keys, registered with --import-key
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--import-key", f"{legacy}:5") as gw:
        resp = do_import(gw, [{"key": raw_key(), "alias": legacy}])
        assert resp.status_code == 200
        result = resp.json()["results"][0]
        assert result["status"] == "error" and "collides with an API key" in result["error"]
        assert resp.json()["imported"] == 0


def test_unknown_fields_of_a_migrated_record_are_reported_not_silently_dropped(gw: InProcessGateway) -> None:
    raw = raw_key()
    resp = do_import(gw, [{"key": raw, "credits": 2, "quotaDailyCalls": 4, "lastResetDay": "2025-01-01"}])
    assert resp.status_code == 200
    assert resp.json()["results"][0]["ignoredFields"] == ["lastResetDay", "quotaDailyCalls"]
    assert gw.balance(raw) == 2


@pytest.mark.parametrize(
    "keys",
    [
        [],
        [{"credits": 5}],
        [{"key": "sk_not_a_paygate_key", "credits": 1}],
        [{"key": "PLACEHOLDER", "credits": -1}],
        [{"key": "PLACEHOLDER", "credits": "5"}],
        [{"key": "PLACEHOLDER", "expiresAt": "tomorrow"}],
        [{"key": "PLACEHOLDER", "ipAllowlist": ["300.1.1.1"]}],
        [{"key": "PLACEHOLDER", "namespace": "bad space"}],
        [{"keyHash": "ab" * 32}],
        [{"keyHash": "not-hex", "keyMasked": "pg_abcd…1234"}],
        [{"key": "PLACEHOLDER"}, {"key": "PLACEHOLDER"}],
        [{"key": "PLACEHOLDER", "autoTopup": {"threshold": 1, "amount": 0}}],
        [{"key": "PLACEHOLDER", "allowedCountries": ["usa"]}],
        [{"key": "PLACEHOLDER", "alias": "pg_lookalike"}],
        [{"key": "PLACEHOLDER", "alias": "has space"}],
        [{"key": "PLACEHOLDER", "totalCalls": 10**20}],
        [{"key": "PLACEHOLDER", "quota": {"dailyCallLimit": 10**20}}],
        [{"key": "PLACEHOLDER", "quota": {"hourlyCallLimit": 5}}],
        [{"key": "PLACEHOLDER", "extra": {"n": 10**20}}],
        [{"key": "PLACEHOLDER", "notes": [{"n": -(10**20)}]}],
        [{"key": "PLACEHOLDER", "autoTopup": {"threshold": 1, "amount": 1, "maxDaily": 1001}}],
    ],
)
def test_one_bad_entry_refuses_the_whole_import(gw: InProcessGateway, keys: list[dict[str, Any]]) -> None:
    good = raw_key()
    placeholder = raw_key()
    entries = [{"key": good, "credits": 1}] + [
        {**k, "key": placeholder} if k.get("key") == "PLACEHOLDER" else k for k in keys
    ]
    before = listed_count(gw)
    resp = do_import(gw, entries if keys else [])
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert listed_count(gw) == before


@pytest.mark.parametrize(
    "body",
    [
        {"keys": [{"key": "pg_" + "1" * 48}], "mode": "merge"},
        {"keys": [{"key": "pg_" + "2" * 48}], "surprise": True},
        {"keys": [{"key": "pg_" + "3" * 48}] * 1001},
    ],
)
def test_bad_import_bodies_are_400s(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = listed_count(gw)
    assert gw.client.post("/keys/import", headers=gw.admin(), json=body).status_code == 400
    assert listed_count(gw) == before


def test_imported_keys_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    raw = raw_key()
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert do_import(gw, [{"key": raw, "credits": 12, "alias": "io-restart"}]).status_code == 200
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert gw.balance(raw) == 12
        assert entry_of(gw, raw)["alias"] == "io-restart"


def test_a_viewer_can_neither_export_nor_import(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "io-viewer", "role": "viewer"})
    assert resp.status_code == 201, resp.text
    viewer = {"X-Admin-Key": resp.json()["key"]}
    assert gw.client.get("/keys/export", headers=viewer).status_code == 403
    before = listed_count(gw)
    assert gw.client.post("/keys/import", headers=viewer, json={"keys": [{"key": raw_key()}]}).status_code == 403
    assert listed_count(gw) == before


def test_an_import_only_joins_groups_teams_and_plans_that_exist_and_keeps_team_caps(gw: InProcessGateway) -> None:
    team = gw.client.post("/teams", headers=gw.admin(), json={"name": f"io-team-{secrets.token_hex(3)}"}).json()
    group = gw.client.post("/groups", headers=gw.admin(), json={"name": f"io-grp-{secrets.token_hex(3)}"}).json()
    ghost_team, ghost_group, ghost_plan = raw_key(), raw_key(), raw_key()
    resp = do_import(
        gw,
        [
            {"key": ghost_team, "teamId": "team_" + "0" * 24},
            {"key": ghost_group, "groupId": "grp_" + "0" * 24},
            {"key": ghost_plan, "plan": "no-such-plan"},
        ],
    )
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["status"] for r in results] == ["error"] * 3
    assert "team" in results[0]["error"] and "group" in results[1]["error"] and "plan" in results[2]["error"]
    assert all(
        gw.client.get("/balance", headers={"X-API-Key": k}).status_code == 401
        for k in (ghost_team, ghost_group, ghost_plan)
    )

    fine = raw_key()
    assert (
        do_import(gw, [{"key": fine, "teamId": team["id"], "groupId": group["id"]}]).json()["results"][0]["status"]
        == "imported"
    )
    crowd = [{"key": raw_key(), "teamId": team["id"]} for _ in range(100)]  # 1 member + 100 > the cap of 100
    over = do_import(gw, crowd, "error")
    assert over.status_code == 409
    members = gw.client.get("/teams/usage", params={"teamId": team["id"]}, headers=gw.admin()).json()
    assert len(members["members"]) == 1
