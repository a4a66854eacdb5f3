"""Request signing (policy/signing.py): GET/POST/DELETE /admin/signing and X-Signature on POST /mcp."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from paygate.policy.signing import sign
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gateway:
        yield gateway


def issue(gw: InProcessGateway, key: str, **extra: Any) -> dict[str, Any]:
    resp = gw.client.post("/admin/signing", json={"key": key, **extra}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def signed_call(gw: InProcessGateway, key: str, signature: str | None, body: bytes | None = None) -> httpx.Response:
    payload = body or orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 2, "b": 3}}}
    )
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    if signature is not None:
        headers["X-Signature"] = signature
    return gw.client.post("/mcp", content=payload, headers=headers)


BODY = orjson.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 2, "b": 3}}}
)


def test_a_signing_key_must_sign_and_a_good_signature_is_charged_once(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    made = issue(gw, key)
    secret = made["secret"]
    assert secret.startswith("pgs_") and made["keyMasked"] and made["rotatedAt"] is None
    unsigned = signed_call(gw, key, None)
    assert unsigned.status_code == 401 and unsigned.json()["error"]["data"]["reason"] == "invalid_signature"
    assert gw.balance(key) == 10
    good = signed_call(gw, key, sign(secret, BODY), BODY)
    assert good.json()["result"]["structuredContent"] == {"result": 5}
    assert gw.balance(key) == 9
    listed = gw.client.get("/admin/signing", headers=gw.admin()).json()
    assert secret not in str(listed) and any(k["keyMasked"] == made["keyMasked"] for k in listed["keys"])
    assert secret not in str(gw.events())
    other = gw.create_key(5)  # keys without a secret are not affected
    assert "result" in gw.rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}, key=other).json()


@pytest.mark.parametrize("case", ["replay", "stale", "tampered", "wrong_secret", "malformed"])
def test_bad_signatures_are_refused_before_any_charge(gw: InProcessGateway, case: str) -> None:
    key = gw.create_key(10)
    secret = issue(gw, key)["secret"]
    now = int(time.time())
    if case == "replay":
        signature = sign(secret, BODY, now, "nonce-used-twice")
        assert signed_call(gw, key, signature, BODY).status_code == 200
        expected_balance = 9
    else:
        expected_balance = 10
        signature = {
            "stale": sign(secret, BODY, now - 3600),
            "tampered": sign(secret, BODY.replace(b'"a":2', b'"a":9')),
            "wrong_secret": sign("pgs_" + "0" * 64, BODY),
            "malformed": "t=abc,n=x,s=zz",
        }.get(case, "")
    refused = signed_call(gw, key, signature, BODY)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["data"]["reason"] == "invalid_signature"
    assert gw.balance(key) == expected_balance


def test_rotation_keeps_the_old_secret_for_the_grace_period_only(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    first = issue(gw, key)["secret"]
    rotated = issue(gw, key, graceSeconds=300)
    assert rotated["secret"] != first and rotated["rotatedAt"] and rotated["previousValidUntil"]
    assert signed_call(gw, key, sign(first, BODY), BODY).status_code == 200
    assert signed_call(gw, key, sign(rotated["secret"], BODY), BODY).status_code == 200
    again = issue(gw, key, graceSeconds=0)  # no grace: only the newest works
    assert signed_call(gw, key, sign(rotated["secret"], BODY), BODY).status_code == 401
    assert signed_call(gw, key, sign(again["secret"], BODY), BODY).status_code == 200
    assert gw.balance(key) == 7
    assert [e["type"] for e in gw.events() if e["type"].startswith("signing.")][-2:] == [
        "signing.rotated",
        "signing.rotated",
    ]


def test_deleting_the_secret_ends_the_requirement(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    issue(gw, key)
    assert signed_call(gw, key, None).status_code == 401
    gone = gw.client.delete("/admin/signing", params={"key": key}, headers=gw.admin())
    assert gone.status_code == 200 and gone.json()["signing"] is False
    assert signed_call(gw, key, None).status_code == 200
    again = gw.client.delete("/admin/signing", params={"key": key}, headers=gw.admin())
    assert again.status_code == 404


@pytest.mark.parametrize(
    "body",
    [{}, {"key": "pg_unknown_key"}, {"toleranceSeconds": 1}, {"key": 5}, {"graceSeconds": -1, "key": "x"}],
)
def test_bad_requests_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = gw.client.get("/admin/signing", headers=gw.admin()).json()
    resp = gw.client.post("/admin/signing", json=body, headers=gw.admin())
    assert resp.status_code in (400, 404, 422), resp.text
    after = gw.client.get("/admin/signing", headers=gw.admin()).json()
    assert after["keys"] == before["keys"] and after["toleranceSeconds"] == before["toleranceSeconds"]


def test_the_tolerance_is_adjustable(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    secret = issue(gw, key)["secret"]
    resp = gw.client.post("/admin/signing", json={"toleranceSeconds": 30}, headers=gw.admin())
    assert resp.status_code == 200 and resp.json()["toleranceSeconds"] == 30
    try:
        assert signed_call(gw, key, sign(secret, BODY, int(time.time()) - 120), BODY).status_code == 401
    finally:
        gw.client.post("/admin/signing", json={"toleranceSeconds": 300}, headers=gw.admin())
    assert signed_call(gw, key, sign(secret, BODY, int(time.time()) - 120), BODY).status_code == 200


def test_a_viewer_cannot_issue_secrets(gw: InProcessGateway) -> None:
    made = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "sig viewer", "role": "viewer"})
    viewer = {"X-Admin-Key": made.json()["key"]}
    key = gw.create_key(1)
    assert gw.client.get("/admin/signing", headers=viewer).status_code == 200
    assert gw.client.post("/admin/signing", headers=viewer, json={"key": key}).status_code == 403


def test_bad_signatures_count_towards_the_address_auto_block(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    issue(gw, key)
    auto = {"enabled": True, "threshold": 2, "windowSeconds": 60, "blockSeconds": 60}
    assert gw.client.post("/admin/ip-access", json={"autoBlock": auto}, headers=gw.admin()).status_code == 200
    try:
        for _ in range(2):
            assert signed_call(gw, key, "t=1,n=abcdefgh,s=" + "0" * 64).status_code == 401
        blocked = signed_call(gw, key, None)
        assert blocked.status_code == 403 and blocked.json()["error"]["data"]["reason"] == "ip_blocked"
    finally:
        gw.client.delete("/admin/ip-access", params={"all": "true"}, headers=gw.admin())
        gw.client.post("/admin/ip-access", json={"autoBlock": {"enabled": False}}, headers=gw.admin())
    assert gw.balance(key) == 10
