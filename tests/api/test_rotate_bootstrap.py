"""POST /admin/keys/rotate-bootstrap: the bootstrap admin key replaced, the old one refused at once and after
a restart, even when the old key is given again by flag; plus what survives a restart on a file store."""

from __future__ import annotations

from pathlib import Path

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

OLD = "admin_the_operators_original_key"


def rotate(gw: InProcessGateway, key: str) -> str:
    resp = gw.client.post("/admin/keys/rotate-bootstrap", headers={"X-Admin-Key": key})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["rotated"] is True and body["message"].startswith("Bootstrap admin key rotated")
    assert body["newKey"] != key and body["newKey"].startswith("admin_")
    return str(body["newKey"])


def status(gw: InProcessGateway, key: str) -> int:
    return gw.client.get("/status", headers={"X-Admin-Key": key}).status_code


def test_rotation_refuses_the_old_key_at_once_and_keeps_it_refused_after_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state, admin_key=OLD) as gw:
        client_key = gw.create_key(30)
        alert = gw.client.post(
            "/balance/alerts", json={"lowCreditThreshold": 9}, headers={"X-API-Key": client_key}
        ).json()["alert"]
        new = rotate(gw, OLD)
        assert status(gw, OLD) == 401 and status(gw, new) == 200
        [event] = gw.events("admin_key.bootstrap_rotated")
        assert event["actor"] == "admin" and new not in str(event) and OLD not in str(event)
        audit = gw.client.get("/audit?types=admin_key.bootstrap_rotated", headers={"X-Admin-Key": new})
        assert audit.status_code == 200 and new not in audit.text and OLD not in audit.text
        assert [e["type"] for e in audit.json()["events"]] == ["admin_key.bootstrap_rotated"], audit.text
    # the operator restarts with the old flag: it stays refused, the rotated key stays the bootstrap key
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state, admin_key=OLD) as gw:
        assert status(gw, OLD) == 401 and status(gw, new) == 200
        assert "was rotated away" in gw.stderr()
        # the key holder's alert is still there
        assert gw.client.get("/balance/alerts", headers={"X-API-Key": client_key}).json()["alert"] == alert
        # and the new key can rotate again
        newer = rotate(gw, new)
        assert status(gw, new) == 401 and status(gw, newer) == 200
    # without a flag the stored (rotated) key is the bootstrap key; a brand-new flag replaces it
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert gw.ready["adminKey"] is None
        assert status(gw, newer) == 200 and status(gw, OLD) == 401
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state, admin_key="admin_a_fresh_key") as gw:
        assert status(gw, "admin_a_fresh_key") == 200 and status(gw, newer) == 401


def test_a_generated_keys_file_is_removed_when_it_is_rotated(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        generated = gw.admin_key
        key_files = list(tmp_path.glob("*.key"))
        assert key_files and generated in key_files[0].read_text()
        new = rotate(gw, generated)
        assert not key_files[0].exists()
        assert status(gw, generated) == 401 and status(gw, new) == 200
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert gw.ready["adminKey"] is None  # nothing to print: the new key was shown once
        assert status(gw, new) == 200 and status(gw, generated) == 401


def test_only_a_super_admin_may_rotate(tmp_path: Path) -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, admin_key=OLD) as gw:
        made = {}
        for role in ("admin", "viewer", "super_admin"):
            resp = gw.client.post("/admin/keys", json={"name": role, "role": role}, headers={"X-Admin-Key": OLD})
            made[role] = resp.json()["key"]
        for role in ("admin", "viewer"):
            resp = gw.client.post("/admin/keys/rotate-bootstrap", headers={"X-Admin-Key": made[role]})
            assert resp.status_code == 403
        assert gw.client.post("/admin/keys/rotate-bootstrap").status_code == 401
        assert gw.client.post("/admin/keys/rotate-bootstrap", headers={"X-Admin-Key": "admin_wrong"}).status_code == 401
        assert gw.client.get("/admin/keys/rotate-bootstrap", headers={"X-Admin-Key": OLD}).status_code == 405
        assert status(gw, OLD) == 200  # none of that rotated anything
        new = rotate(gw, made["super_admin"])  # another super_admin may
        assert status(gw, OLD) == 401 and status(gw, new) == 200
        assert status(gw, made["super_admin"]) == 200  # role-bearing keys are untouched
        [event] = gw.events("admin_key.bootstrap_rotated")
        assert event["actor"].startswith("admin:super_admin")
