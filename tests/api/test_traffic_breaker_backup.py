"""The circuit breaker's, the timeouts' and the retry policy's admin-set settings travel in backups: a
restore checks each document against its route's request model (compose/doc_checks.py) and the gateway
applies what it restored at once."""

from __future__ import annotations

import copy
from pathlib import Path

from tests.api.backup_support import backup, digest, restore
from tests.inprocess import running_inprocess_gateway
from tests.support import ECHO_COMMAND


def test_the_settings_are_backed_up_checked_and_applied_on_restore(tmp_path: Path) -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND) as source:
        h = source.admin()
        assert source.client.post("/admin/circuit", json={"threshold": 4}, headers=h).status_code == 200
        assert source.client.post("/admin/timeouts", json={"tools": {"slow": 1234}}, headers=h).status_code == 200
        policy = {"enabled": True, "idempotentTools": ["echo"]}
        assert source.client.post("/admin/retry-policy", json=policy, headers=h).status_code == 200
        snapshot = backup(source)
    documents = snapshot["data"]["documents"]
    assert documents["traffic.circuit"]["settings"]["threshold"] == 4
    assert documents["traffic.timeouts"]["settings"]["tools"] == {"slow": 1234}
    assert documents["traffic.retry"]["policy"]["idempotentTools"] == ["echo"]

    with running_inprocess_gateway("--server", ECHO_COMMAND) as target:
        h = target.admin()
        for kind, doc_id, field, bad in (
            ("traffic.circuit", "settings", "threshold", -1),
            ("traffic.timeouts", "settings", "tools", {"slow": -5}),
            ("traffic.retry", "policy", "maxRetries", 99),
            ("traffic.retry", "policy", "baseBackoffMs", 3000),  # above maxBackoffMs (2000)
            ("traffic.circuit", "other", None, None),
        ):
            tampered = copy.deepcopy(snapshot)
            docs = tampered["data"]["documents"][kind]
            if field is None:
                docs["other"] = docs.pop("settings")
            else:
                docs[doc_id][field] = bad
            tampered["checksum"] = digest(tampered["data"])
            resp = restore(target, tampered, "merge")
            assert resp.status_code == 400, (kind, field, resp.text)
            assert kind in resp.text, resp.text
        assert target.client.get("/admin/circuit", headers=h).json()["enabled"] is False  # nothing was written
        assert restore(target, snapshot, "merge").status_code == 200
        assert target.client.get("/admin/circuit", headers=h).json()["threshold"] == 4
        assert target.client.get("/admin/timeouts", headers=h).json()["tools"] == {"slow": 1234}
        retry = target.client.get("/admin/retry-policy", headers=h).json()
        assert retry["active"] is True and retry["idempotentTools"] == ["echo"]
        assert target.rt is not None and target.rt.dispatcher.traffic.tool_timeouts == {"slow": 1.234}
