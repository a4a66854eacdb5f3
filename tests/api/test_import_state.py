"""`paygate-mcp import-state`: paygate-mcp 10.24.0's own state files (tests/fixtures/reference_state,
written by the reference itself) imported, then served by the real app in process."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paygate.cli import app
from paygate.core.keys import hash_key
from paygate.core.records import KeyRecord
from paygate.store.errors import Conflict
from paygate.store.sqlite import SQLiteStore
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference_state"
KEYS: dict[str, str] = json.loads((FIXTURES / "keys.json").read_text())
ADMIN = "our_own_admin_key_for_tests"


def run(*args: str) -> tuple[int, Any]:
    """`paygate-mcp import-state ARGS --json` in process: (exit code, parsed output)."""
    result = CliRunner().invoke(app, ["import-state", *args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of the reference's state files (a test may edit its copy)."""
    directory = tmp_path / "reference"
    directory.mkdir()
    for f in FIXTURES.glob("state*.json"):
        shutil.copy(f, directory / f.name)
    return directory / "state.json"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "ours" / "paygate.db")


@pytest.fixture
def served(source: Path, db: str) -> Iterator[InProcessGateway]:
    code, out = run(str(source), "--state-file", db)
    assert code == 0, out
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=db, admin_key=ADMIN) as gw:
        yield gw


def keys_by_name(gw: InProcessGateway, headers: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    resp = gw.client.get("/keys", headers=headers or gw.admin())
    assert resp.status_code == 200, resp.text
    return {k["name"]: k for k in resp.json()}


def ledger_rows(db: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM ledger").fetchone()[0])


def test_every_key_field_lands_and_the_raw_keys_still_authenticate(served: InProcessGateway) -> None:
    keys = keys_by_name(served)
    alice = keys["alice"]
    assert alice["credits"] == 122 and alice["totalSpent"] == 3 and alice["totalCalls"] == 3
    assert alice["allowedTools"] == ["echo", "add"] and alice["deniedTools"] == ["slow"]
    quota = {"dailyCallLimit": 100, "monthlyCallLimit": 0, "dailyCreditLimit": 0, "monthlyCreditLimit": 5000}
    assert alice["quota"] == quota
    assert alice["tags"] == {"team": "backend", "env": "prod"} and alice["alias"] == "alice-prod"
    assert alice["spendingLimit"] == 500 and alice["ipAllowlist"] == ["127.0.0.1", "10.0.0.0/8"]
    assert alice["lastUsedAt"] is not None and alice["createdAt"].startswith("20")
    bob = keys["bob"]
    assert bob["namespace"] == "tenant-a" and bob["suspended"] is True and bob["expiresAt"].startswith("2046-")
    assert keys["carol"]["active"] is False and keys["carol"]["credits"] == 30
    assert keys["erin"]["credits"] == 0 and keys["erin"]["totalSpent"] == 1
    # the same key string: a paid call on /mcp, and the balance goes down
    reply = served.call_tool("echo", {"text": "moved"}, KEYS["alice"])
    assert "error" not in reply, reply
    assert served.balance(KEYS["alice"]) == 121
    assert "error" in served.call_tool("echo", {"text": "x"}, KEYS["bob"])  # suspended
    assert "error" in served.call_tool("echo", {"text": "x"}, KEYS["carol"])  # revoked
    assert "error" in served.call_tool("add", {"a": 1, "b": 1}, KEYS["erin"])  # no credits
    notes = served.client.get("/keys/notes", params={"key": "alice-prod"}, headers=served.admin()).json()
    assert [n["text"] for n in notes["notes"]] == ["migrated customer"]


def test_groups_memberships_auto_topup_and_templates_land(served: InProcessGateway) -> None:
    groups = {g["id"]: g for g in served.client.get("/groups", headers=served.admin()).json()}
    group = groups[KEYS["groupId"]]
    assert group["name"] == "free-tier" and group["allowedTools"] == ["echo"] and group["rateLimitPerMin"] == 30
    assert group["tags"] == {"tier": "free"} and group["memberCount"] == 1
    # dave is in the group: its allowedTools (echo only) now bind him
    assert "error" not in served.call_tool("echo", {"text": "x"}, KEYS["dave"])
    assert "error" in served.call_tool("add", {"a": 1, "b": 1}, KEYS["dave"])
    exported = served.client.get("/keys/export", headers=served.admin()).json()["keys"]
    dave = next(k for k in exported if k["name"] == "dave")
    assert dave["autoTopup"] == {"threshold": 10, "amount": 50, "maxDaily": 3}
    assert dave["groupId"] == KEYS["groupId"]
    templates = served.client.get("/keys/templates", headers=served.admin()).json()["templates"]
    (template,) = templates
    assert template["name"] == "free-tier" and template["credits"] == 100 and template["allowedTools"] == ["echo"]
    assert template["tags"] == {"a": "b"} and template["createdAt"].startswith("20")


def test_admin_keys_keep_their_roles_and_a_revoked_one_stays_revoked(served: InProcessGateway) -> None:
    listing = served.client.get("/admin/keys", headers=served.admin()).json()["keys"]
    roles = {k["name"]: (k["role"], k["active"]) for k in listing}
    assert roles["CI Bot"] == ("admin", True) and roles["Dashboard"] == ("viewer", True)
    assert roles["Old bot"] == ("admin", False) and roles["Bootstrap Admin"] == ("super_admin", True)
    assert KEYS["ciBot"] not in json.dumps(listing)
    as_ci = {"X-Admin-Key": KEYS["ciBot"]}
    assert served.client.post("/topup", headers=as_ci, json={"key": KEYS["erin"], "credits": 5}).status_code == 200
    as_viewer = {"X-Admin-Key": KEYS["viewer"]}
    assert served.client.get("/keys", headers=as_viewer).status_code == 200
    assert served.client.post("/topup", headers=as_viewer, json={"key": KEYS["erin"], "credits": 5}).status_code == 403
    assert served.client.get("/keys", headers={"X-Admin-Key": KEYS["revokedAdmin"]}).status_code == 401
    # the reference's own admin key keeps working (as a super_admin admin key)
    assert served.client.get("/admin/keys", headers={"X-Admin-Key": KEYS["adminKey"]}).status_code == 200


def test_a_second_run_imports_nothing_and_changes_nothing(source: Path, db: str) -> None:
    code, first = run(str(source), "--state-file", db)
    assert code == 0 and first["summary"] == {"imported": 11, "unchanged": 0, "conflict": 0, "error": 0}
    rows = ledger_rows(db)
    code, second = run(str(source), "--state-file", db)
    assert code == 0 and second["summary"] == {"imported": 0, "unchanged": 11, "conflict": 0, "error": 0}
    assert ledger_rows(db) == rows


def test_a_key_here_with_other_data_is_reported_and_left_alone(source: Path, db: str) -> None:
    assert run(str(source), "--state-file", db)[0] == 0
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=db, admin_key=ADMIN) as gw:
        gw.call_tool("echo", {"text": "spend"}, KEYS["alice"])
    code, out = run(str(source), "--state-file", db)
    assert code == 3
    (alice,) = [i for i in out["items"] if i["name"] == "alice"]
    assert alice["status"] == "conflict" and "credits" in alice["reason"] and "not overwritten" in alice["reason"]
    store = SQLiteStore(db)
    store.open()
    try:
        record = store.get_key(hash_key(KEYS["alice"]))
        assert record is not None and record.credits == 121
    finally:
        store.close()


def test_a_dry_run_reports_the_same_and_writes_nothing(source: Path, db: str) -> None:
    code, out = run(str(source), "--state-file", db, "--dry-run")
    assert code == 0 and out["dryRun"] is True and out["summary"]["imported"] == 11
    assert not Path(db).exists()  # not even an empty database
    assert run(str(source), "--state-file", db)[0] == 0
    rows = ledger_rows(db)
    (source.parent / "state.json").write_text("[]")
    code, again = run(str(source), "--state-file", db, "--dry-run")
    assert code == 0 and again["summary"]["unchanged"] == 6  # the side files' items; no keys in the file now
    assert ledger_rows(db) == rows


def test_a_corrupt_or_missing_state_file_imports_nothing(source: Path, db: str, tmp_path: Path) -> None:
    source.write_text('[["pg_abc", {"name": ')
    code, out = run(str(source), "--state-file", db)
    assert code == 1 and "not JSON" in out["error"] and not Path(db).exists()
    code, out = run(str(tmp_path / "nowhere.json"), "--state-file", db)
    assert code == 1 and "no such file" in out["error"]
    (source.parent / "state.json").write_text('{"some": "object"}')
    code, out = run(str(source), "--state-file", db)
    assert code == 1 and "pairs" in out["error"]


def test_unknown_fields_and_sections_of_a_newer_reference_are_reported_not_fatal(source: Path, db: str) -> None:
    pairs = json.loads(source.read_text())
    pairs[0][1]["loyaltyTier"] = "gold"
    source.write_text(json.dumps({"version": 99, "keys": pairs, "webhooks": []}))
    code, out = run(str(source), "--state-file", db)
    assert code == 0 and out["summary"]["imported"] == 11
    assert out["ignoredSections"] == ["version", "webhooks"]
    (alice,) = [i for i in out["items"] if i["name"] == "alice"]
    assert alice["ignoredFields"] == ["loyaltyTier"] and alice["status"] == "imported"


def test_invalid_items_are_refused_one_by_one_and_the_rest_imported(source: Path, db: str) -> None:
    pairs = json.loads(source.read_text())
    pairs[1][1]["credits"] = -5  # bob
    pairs[3][1]["group"] = "grp_gone"  # dave, in a group nobody has
    source.write_text(json.dumps(pairs))
    groups = json.loads((source.parent / "state-groups.json").read_text())
    groups["assignments"] = []
    (source.parent / "state-groups.json").write_text(json.dumps(groups))
    code, out = run(str(source), "--state-file", db)
    assert code == 3
    status = {i["name"]: (i["status"], i.get("reason", "")) for i in out["items"] if i["kind"] == "key"}
    assert status["bob"][0] == "error" and "credits" in status["bob"][1]
    assert status["dave"] == ("error", "its group grp_gone is not in the groups file nor here")
    assert status["alice"][0] == "imported" and out["summary"]["imported"] == 9


def test_a_state_file_a_running_gateway_holds_is_refused(source: Path, db: str) -> None:
    holder = SQLiteStore(db)
    holder.open()
    try:
        code, out = run(str(source), "--state-file", db)
        assert code == 1 and "in use" in out["error"]
        assert holder.list_keys() == []
    finally:
        holder.close()


def test_insert_all_writes_everything_or_nothing(db: str) -> None:
    store = SQLiteStore(db)
    store.open()
    try:
        same = {"key_hash": hash_key("pg_one"), "prefix": "pg_one", "last4": "_one", "created_at": 1.0}
        first = KeyRecord(name="a", credits=5, **same)  # type: ignore[arg-type]
        twin = KeyRecord(name="b", credits=7, **same)  # type: ignore[arg-type]
        with pytest.raises(Conflict):
            store.insert_all([first, twin], [("key_template", "t", {"name": "t"})], "import-state")
        assert store.list_keys() == [] and store.doc_peek("key_template", "t") is None
    finally:
        store.close()
    assert ledger_rows(db) == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM keys").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM docs").fetchone()[0] == 0


def test_an_admin_key_shorter_than_our_minimum_is_refused(source: Path, db: str) -> None:
    admins = json.loads((source.parent / "state-admin.json").read_text())
    admins[1]["key"] = "short_admin"
    (source.parent / "state-admin.json").write_text(json.dumps(admins))
    code, out = run(str(source), "--state-file", db)
    assert code == 3
    (ci,) = [i for i in out["items"] if i["name"] == "CI Bot"]
    assert ci["status"] == "error" and "shorter than 16" in ci["reason"]
    assert out["summary"]["imported"] == 10
