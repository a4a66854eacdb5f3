"""Issue 11 items 15 and 16: request bodies on admin routes.

15: the large `maxStateUploadBytes` limit is only for a key whose role may use the upload route
(super_admin for /admin/restore, admin for /keys/import); any other caller's bigger body is refused
before it is read. 16: a chunked body over the limit gets the standard 413 on every route.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

BIG = 60 * 1024 * 1024


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gateway:
        yield gateway


def admin_key(gw: InProcessGateway, role: str) -> str:
    resp = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": f"body {role}", "role": role})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["key"])


def answer_to_declared_body(gw: InProcessGateway, path: str, key: str | None, declared: int) -> tuple[int, bytes]:
    """Send headers declaring `declared` bytes of body but only a few of them; the status line and
    body that come back before the rest is sent (a server waiting for the body would time out here)."""
    url = urlparse(gw.url)
    assert url.hostname is not None and url.port is not None
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {url.hostname}:{url.port}",
        "Content-Type: application/json",
        f"Content-Length: {declared}",
    ]
    if key is not None:
        head.append(f"X-Admin-Key: {key}")
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b'{"backup": {')
        data = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            assert time.monotonic() < deadline, f"no answer without the body: {data!r}"
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize(
    ("path", "role"),
    [("/admin/restore", "viewer"), ("/admin/restore", "admin"), ("/keys/import", "viewer"), ("/keys/import", None)],
)
def test_a_key_that_may_not_upload_gets_413_unread(gw: InProcessGateway, path: str, role: str | None) -> None:
    key = admin_key(gw, role) if role else None
    status, body = answer_to_declared_body(gw, path, key, BIG)
    assert status == 413
    doc = json.loads(body)
    assert doc["error"] == "Request body too large" and doc["requestId"]


def test_a_key_that_may_upload_is_read_up_to_the_upload_limit(gw: InProcessGateway) -> None:
    padded = {"backup": {"version": 1}, "mode": "merge", "padding": "x" * 2_000_000}
    for role, path, status in (("admin", "/keys/import", 400), ("super_admin", "/admin/restore", 400)):
        resp = gw.client.post(path, json=padded, headers={"X-Admin-Key": admin_key(gw, role)})
        assert resp.status_code == status, resp.text  # read and validated, not refused for its size
    viewer = {"X-Admin-Key": admin_key(gw, "viewer")}
    assert gw.client.post("/admin/restore", json=padded, headers=viewer).status_code == 413
    small = gw.client.post("/admin/restore", json={"backup": {}}, headers=viewer)
    assert small.status_code == 403


def _chunks(body: bytes, size: int = 65_536) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_every_route_answers_a_chunked_body_over_the_limit_with_the_standard_413(gw: InProcessGateway) -> None:
    body = b'{"x": "' + b"y" * 1_100_000 + b'"}'
    spec = gw.client.get("/openapi.json").json()
    wrong = []
    checked = 0
    for path, ops in spec["paths"].items():
        concrete = "/".join("x" if part.startswith("{") else part for part in path.split("/"))
        for method in ops:
            if method not in ("post", "put", "patch", "delete"):
                continue
            for headers in ({}, {"X-Admin-Key": admin_key(gw, "viewer")} if checked == 0 else gw.admin()):
                if concrete in ("/admin/restore", "/keys/import") and headers == gw.admin():
                    continue  # the upload limit applies: read and validated
                resp = gw.client.request(
                    method.upper(), concrete, content=_chunks(body), headers={**headers, "Content-Type": "text/plain"}
                )
                checked += 1
                doc = resp.json()
                if resp.status_code != 413 or set(doc) != {"error", "requestId"}:
                    wrong.append(f"{method} {concrete}: {resp.status_code} {resp.text[:80]}")
    assert checked > 50
    assert not wrong, "\n".join(wrong)
