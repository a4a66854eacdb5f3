"""Request body limits: `maxBodyBytes` for everyone, `maxStateUploadBytes` for state uploads by an admin key."""

from __future__ import annotations

from tests.inprocess import InProcessGateway


def test_a_restore_larger_than_max_body_bytes_is_read_only_for_an_admin_key(gw: InProcessGateway) -> None:
    padded = {"backup": {"version": 1}, "mode": "merge", "padding": "x" * 2_000_000}  # > maxBodyBytes (1 MB)
    assert gw.client.post("/admin/restore", json=padded).status_code == 413
    wrong = {"X-Admin-Key": "admin_" + "0" * 48}
    assert gw.client.post("/admin/restore", json=padded, headers=wrong).status_code == 413
    read = gw.client.post("/admin/restore", json=padded, headers=gw.admin())
    assert read.status_code == 400 and "padding" in read.text  # read and validated, not refused for its size


def test_an_import_larger_than_max_body_bytes_without_an_admin_key_is_refused_unread(gw: InProcessGateway) -> None:
    padded = {"keys": [], "padding": "x" * 2_000_000}
    assert gw.client.post("/keys/import", json=padded).status_code == 413
    read = gw.client.post("/keys/import", json=padded, headers=gw.admin())
    assert read.status_code == 400  # read and validated, not refused for its size
