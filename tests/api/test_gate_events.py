"""Every tools/call publishes one gate event; with `auditGateEvents` it is in the durable audit log, with
the call's request id. By default it is not (a row per call halved throughput at 64 connections)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, wait_until, write_config


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = write_config(tmp_path_factory.mktemp("gate-events"), {"auditGateEvents": True})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gateway:
        yield gateway


def _audit(gw: InProcessGateway, types: str) -> list[dict[str, Any]]:
    resp = gw.client.get("/audit", params={"types": types, "limit": 1000}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return list(resp.json()["events"])


def test_an_allowed_call_is_audited_as_gate_allow_with_its_request_id_and_credits(gw: InProcessGateway) -> None:
    key = gw.create_key(50)
    resp = gw.rpc(
        "tools/call",
        {"name": "echo", "arguments": {"text": "hi"}},
        key=key,
        headers={"X-Request-Id": "trace-gate-allow-1"},
    )
    assert resp.status_code == 200 and "error" not in resp.json()
    entry = next(e for e in _audit(gw, "gate.allow") if e["metadata"]["requestId"] == "trace-gate-allow-1")
    meta = entry["metadata"]
    assert entry["actor"] == masked(key) and entry["message"] == "Allowed: echo"
    assert meta["tool"] == "echo" and meta["credits"] == 1 and meta["keyMasked"] == masked(key)
    assert meta["durationMs"] >= 0 and "keyHash" not in meta


def test_a_denied_call_is_audited_as_gate_deny_with_the_reason(gw: InProcessGateway) -> None:
    key = gw.create_key(0)
    resp = gw.rpc(
        "tools/call",
        {"name": "echo", "arguments": {"text": "hi"}},
        key=key,
        headers={"X-Request-Id": "trace-gate-deny-1"},
    )
    assert resp.json()["error"]["data"]["reason"] == "insufficient_credits"
    entry = next(e for e in _audit(gw, "gate.deny") if e["metadata"]["requestId"] == "trace-gate-deny-1")
    assert entry["metadata"]["reason"] == "insufficient_credits"
    assert entry["message"] == "Denied: echo (insufficient_credits)"


def test_a_generated_request_id_is_the_one_in_the_response_header(gw: InProcessGateway) -> None:
    key = gw.create_key(5)
    resp = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}, key=key)
    request_id = resp.headers["x-request-id"]
    assert any(e["metadata"]["requestId"] == request_id for e in _audit(gw, "gate.allow"))


def test_gate_events_stay_out_of_a_keys_admin_activity(gw: InProcessGateway) -> None:
    key = gw.create_key(5)
    gw.call_tool("echo", {"text": "x"}, key)
    resp = gw.client.get("/keys/activity", params={"key": key}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    sources = [(e["source"], e["type"]) for e in resp.json()["events"]]
    assert ("usage", "tool.call") in sources and not any(t.startswith("gate.") for _, t in sources)


def test_by_default_calls_stay_out_of_the_audit_log_but_reach_the_request_log(tmp_path: Path) -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND) as plain:
        key = plain.create_key(5)
        resp = plain.rpc(
            "tools/call",
            {"name": "echo", "arguments": {"text": "x"}},
            key=key,
            headers={"X-Request-Id": "trace-default-1"},
        )
        assert "result" in resp.json()
        audited = plain.client.get("/audit", params={"types": "gate.allow,gate.deny"}, headers=plain.admin())
        assert audited.status_code == 200 and audited.json()["total"] == 0
        logged = plain.client.get("/requests", headers=plain.admin()).json()["requests"]
        assert [r["requestId"] for r in logged] == ["trace-default-1"]
        assert plain.client.get("/audit", params={"types": "key.created"}, headers=plain.admin()).json()["total"] == 1


def test_a_request_log_entry_has_its_audit_entrys_id(gw: InProcessGateway) -> None:
    key = gw.create_key(5)
    gw.rpc(
        "tools/call", {"name": "echo", "arguments": {"text": "x"}}, key=key, headers={"X-Request-Id": "audit-link-1"}
    )
    logged = gw.client.get("/requests", params={"key": masked(key)}, headers=gw.admin()).json()["requests"]
    match = [e for e in _audit(gw, "gate.allow") if e["metadata"]["requestId"] == "audit-link-1"]
    assert [e["id"] for e in match] == [logged[0]["id"]]


def test_an_expired_key_is_announced_once_as_key_expired_however_often_it_is_refused(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    resp = gw.client.post("/keys/expiry", json={"key": key, "expiresIn": 1}, headers=gw.admin())
    expires = datetime.fromisoformat(resp.json()["expiresAt"]).timestamp()
    wait_until(lambda: time.time() > expires + 0.05, what="the expiry time")
    for _ in range(3):
        reply = gw.call_tool("echo", {"text": "x"}, key)
        assert reply["error"]["data"]["reason"] == "api_key_expired"
    expired = [e for e in _audit(gw, "key.expired") if e["metadata"]["keyMasked"] == masked(key)]
    assert len(expired) == 1 and expired[0]["actor"] == "system"
    assert expired[0]["metadata"]["expiresAt"] == resp.json()["expiresAt"]
