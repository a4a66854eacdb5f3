"""Request body limits: `maxBodyBytes` for everyone, `maxStateUploadBytes` for state uploads by an admin key."""

from __future__ import annotations

import json
from collections.abc import Iterator

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


def _chunks(body: bytes, size: int = 65_536) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_chunked_admin_body_over_the_limit_is_413_like_a_sized_one_and_creates_nothing(gw: InProcessGateway) -> None:
    before = gw.client.get("/keys", headers=gw.admin()).json()
    body = json.dumps({"name": "chunky", "credits": 5, "tags": {"pad": "x" * 400}, "x": "y" * 2_000_000}).encode()
    resp = gw.client.post("/keys", content=_chunks(body), headers={**gw.admin(), "Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"] == "Request body too large"
    assert resp.json()["requestId"] == resp.headers["x-request-id"]
    assert gw.client.get("/keys", headers=gw.admin()).json() == before


def test_a_chunked_admin_body_within_the_limit_is_served(gw: InProcessGateway) -> None:
    body = json.dumps({"name": "chunked-ok", "credits": 7}).encode()
    resp = gw.client.post("/keys", content=_chunks(body, 8), headers={**gw.admin(), "Content-Type": "application/json"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["credits"] == 7


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_json_sent_with_a_forms_label_as_curl_d_does_is_read_as_json(gw: InProcessGateway) -> None:
    body = json.dumps({"name": "curl-d", "credits": 7}).encode()
    resp = gw.client.post("/keys", content=body, headers={**gw.admin(), **FORM})
    assert resp.status_code == 201, resp.text
    assert resp.json()["credits"] == 7
    chunked = gw.client.post("/keys", content=_chunks(body, 5), headers={**gw.admin(), **FORM})
    assert chunked.status_code == 201, chunked.text


def test_a_real_form_body_is_still_a_clean_400_that_creates_nothing(gw: InProcessGateway) -> None:
    before = len(gw.client.get("/keys", headers=gw.admin()).json())
    resp = gw.client.post("/keys", content=b"name=x&credits=5", headers={**gw.admin(), **FORM})
    assert resp.status_code == 400 and "requestId" in resp.json()
    assert "must be a JSON object" in resp.json()["error"]  # not pydantic's "valid dictionary"
    too_big = gw.client.post("/keys", content=b"{" + b" " * 2_000_000 + b"}", headers={**gw.admin(), **FORM})
    assert too_big.status_code == 413
    assert len(gw.client.get("/keys", headers=gw.admin()).json()) == before


def test_a_body_that_is_not_json_says_so(gw: InProcessGateway) -> None:
    before = len(gw.client.get("/keys", headers=gw.admin()).json())
    json_label = {**gw.admin(), "Content-Type": "application/json"}
    broken = gw.client.post("/keys", content=b'{"name": ', headers=json_label)
    assert broken.status_code == 400
    assert broken.json()["error"] == "Invalid request: the body is not valid JSON (at character 9)"
    listed = gw.client.post("/keys", content=b"[1, 2]", headers=json_label)
    assert listed.status_code == 400 and "must be a JSON object" in listed.json()["error"]
    assert len(gw.client.get("/keys", headers=gw.admin()).json()) == before
