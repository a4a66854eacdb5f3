"""POST /admin/restore refusing what it must: tampered or malformed backups and requests (400), aliases that
collide (409), and the roles backup and restore need — each changing nothing."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.api.backup_support import backup, comparable, digest, key_entry, restore, sha
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config


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
