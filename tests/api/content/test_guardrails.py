"""Guardrails (content/guardrails.py): GET/POST/DELETE /admin/guardrails, /admin/guardrails/violations, and
what each action does to a call and to its credits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.content.support import GateEvents
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

CARD = "4111 1111 1111 1111"  # passes Luhn
NOT_A_CARD = "4111 1111 1111 1112"


@pytest.fixture(scope="module")
def ggw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "echo:3") as gw:
        yield gw


@pytest.fixture(scope="module")
def gate(ggw: InProcessGateway) -> GateEvents:
    return GateEvents(ggw)


@pytest.fixture(autouse=True)
def reset(ggw: InProcessGateway) -> Iterator[None]:
    yield
    for rule in view(ggw)["rules"]:
        if not rule["builtin"] or rule["enabled"]:
            ggw.client.delete("/admin/guardrails", params={"id": rule["id"]}, headers=ggw.admin())
    post(ggw, {"enabled": True})
    ggw.client.delete("/admin/guardrails/violations", headers=ggw.admin())


def view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/guardrails", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def post(gw: InProcessGateway, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return gw.client.post("/admin/guardrails", json=body, headers=headers or gw.admin())


def echo(gw: InProcessGateway, text: str, key: str) -> dict[str, Any]:
    return dict(gw.rpc("tools/call", {"name": "echo", "arguments": {"text": text}}, key=key).json())


def violations(gw: InProcessGateway, **params: Any) -> dict[str, Any]:
    resp = gw.client.get("/admin/guardrails/violations", params=params, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_the_eight_builtins_start_off_and_nothing_is_scanned(ggw: InProcessGateway) -> None:
    state = view(ggw)
    ids = {r["id"] for r in state["rules"]}
    assert ids == {
        "pii_credit_card",
        "pii_ssn",
        "pii_email",
        "pii_phone",
        "secret_aws_key",
        "secret_api_key",
        "pii_iban",
        "pii_passport",
    }
    assert state["enabled"] is True and state["active"] is False
    key = ggw.create_key(10)
    assert echo(ggw, f"card {CARD}", key)["result"]["content"][0]["text"] == f"card {CARD}"
    assert violations(ggw)["total"] == 0


def test_block_on_input_refuses_before_any_charge_and_records_no_secret(ggw: InProcessGateway) -> None:
    resp = post(ggw, {"id": "pii_credit_card", "enabled": True, "action": "block", "scope": "input"})
    assert resp.status_code == 200, resp.text
    key = ggw.create_key(10)
    reply = echo(ggw, f"pay with {CARD} please", key)
    assert reply["error"]["code"] == -32602
    assert reply["error"]["data"] == {
        "reason": "guardrail_violation",
        "tool": "echo",
        "scope": "input",
        "rules": ["pii_credit_card"],
    }
    assert ggw.balance(key) == 10
    assert echo(ggw, f"not a card {NOT_A_CARD}", key)["result"]["content"][0]["text"].endswith(NOT_A_CARD)
    assert ggw.balance(key) == 7
    [v] = violations(ggw)["violations"]
    assert v["ruleId"] == "pii_credit_card" and v["action"] == "block" and v["scope"] == "input"
    assert v["tool"] == "echo" and v["count"] == 1 and v["keyMasked"] and "paths" not in v
    listed = ggw.client.get("/admin/guardrails/violations", headers=ggw.admin()).text
    event = ggw.events("guardrail.violation")[-1]
    assert "4111" not in listed and "4111" not in str(event)  # the secret is never kept
    assert event["data"]["rules"] == {"pii_credit_card": 1}
    assert (
        'paygate_guardrail_violations_total{action="block",rule="pii_credit_card"} 1.0'
        in ggw.client.get("/metrics").text
    )


def test_redact_on_input_changes_what_the_backend_receives(ggw: InProcessGateway) -> None:
    assert post(ggw, {"id": "pii_email", "enabled": True, "action": "redact", "scope": "input"}).status_code == 200
    key = ggw.create_key(10)
    reply = echo(ggw, "mail bob@example.com now", key)
    assert reply["result"]["content"][0]["text"] == "mail [REDACTED:pii_email] now"  # the echo: what it got
    assert ggw.balance(key) == 7


def test_redact_on_output_changes_what_the_client_gets(ggw: InProcessGateway) -> None:
    assert post(ggw, {"id": "pii_ssn", "enabled": True, "action": "redact", "scope": "output"}).status_code == 200
    key = ggw.create_key(10)
    reply = echo(ggw, "ssn 123-45-6789", key)
    assert reply["result"]["content"][0]["text"] == "ssn [REDACTED:pii_ssn]"
    assert reply["result"]["structuredContent"] == {"result": "ssn [REDACTED:pii_ssn]"}
    assert ggw.balance(key) == 7
    assert violations(ggw)["violations"][0]["scope"] == "output"


def test_block_on_output_withholds_the_result_and_refunds_it(ggw: InProcessGateway, gate: GateEvents) -> None:
    body = {"name": "codename", "pattern": "PROJECT-[0-9]{3}", "action": "block", "scope": "output", "tools": ["ec*"]}
    resp = post(ggw, body)
    assert resp.status_code == 200, resp.text
    rule_id = resp.json()["rule"]["id"]
    key = ggw.create_key(10)
    reply = echo(ggw, "PROJECT-123", key)
    assert reply["error"]["data"]["reason"] == "guardrail_violation" and reply["error"]["data"]["scope"] == "output"
    assert reply["error"]["data"]["rules"] == [rule_id]
    assert ggw.balance(key) == 10  # ran, withheld, refunded in full (refundOnFailure is off here)
    masked = violations(ggw)["violations"][0]["keyMasked"]
    [allow] = gate.allowed(masked)
    assert allow["credits"] == 0 and allow["refunded"] == 3 and allow["failed"] is True
    add = ggw.rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}, key=key).json()
    assert "result" in add  # the rule names ec* only
    assert [a["credits"] for a in gate.allowed(masked)] == [0, 1]


def test_warn_and_log_let_the_call_through(ggw: InProcessGateway) -> None:
    assert post(ggw, {"id": "secret_aws_key", "enabled": True, "action": "warn"}).status_code == 200
    assert post(ggw, {"id": "pii_email", "enabled": True, "action": "log"}).status_code == 200
    key = ggw.create_key(10)
    resp = ggw.rpc("tools/call", {"name": "echo", "arguments": {"text": "AKIAABCDEFGHIJKLMNOP a@b.io"}}, key=key)
    assert resp.json()["result"]["content"][0]["text"] == "AKIAABCDEFGHIJKLMNOP a@b.io"
    assert resp.headers["x-guardrail-warning"] == "secret_aws_key"
    found = {(v["ruleId"], v["scope"]) for v in violations(ggw)["violations"]}
    assert found == {(r, s) for r in ("secret_aws_key", "pii_email") for s in ("input", "output")}
    assert {v["ruleId"] for v in violations(ggw, ruleId="pii_email")["violations"]} == {"pii_email"}
    assert violations(ggw, tool="add")["total"] == 0
    assert ggw.balance(key) == 7


def test_the_toggle_switches_every_rule_off_and_back(ggw: InProcessGateway) -> None:
    assert post(ggw, {"id": "pii_email", "enabled": True, "action": "block"}).status_code == 200
    assert post(ggw, {"enabled": False}).json()["active"] is False
    key = ggw.create_key(10)
    assert "result" in echo(ggw, "a@b.io", key)
    assert post(ggw, {"enabled": True}).json()["active"] is True
    assert echo(ggw, "a@b.io", key)["error"]["data"]["reason"] == "guardrail_violation"
    assert [e["data"]["enabled"] for e in ggw.events("guardrail.toggled")][-2:] == [False, True]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"pattern": "(a+)+$"}, 400),  # nested repeat: catastrophic backtracking
        ({"pattern": "(a)\\1"}, 400),
        ({"pattern": "["}, 400),
        ({"pattern": "a*"}, 400),  # matches the empty string
        ({"pattern": "x" * 501}, 400),
        ({"name": "no pattern"}, 400),
        ({"id": "pii_email", "pattern": "x"}, 400),  # a built-in's pattern is fixed
        ({"id": "bad id!", "pattern": "x"}, 400),
        ({"pattern": "x", "action": "explode"}, 400),
        ({"pattern": "x", "scope": "sideways"}, 400),
        ({"pattern": "x", "unknown": 1}, 400),
        ({}, 400),
    ],
)
def test_refusals_change_nothing(ggw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    before = view(ggw)
    resp = post(ggw, body)
    assert resp.status_code == status, resp.text
    assert view(ggw) == before


def test_delete_resets_a_builtin_and_removes_a_custom_rule(ggw: InProcessGateway) -> None:
    assert post(ggw, {"id": "pii_email", "enabled": True, "action": "block"}).status_code == 200
    assert post(ggw, {"id": "mine", "pattern": "secret-[0-9]+"}).status_code == 200
    assert ggw.client.delete("/admin/guardrails", params={"id": "nope"}, headers=ggw.admin()).status_code == 404
    assert ggw.client.delete("/admin/guardrails", params={"id": "pii_email"}, headers=ggw.admin()).status_code == 200
    assert ggw.client.delete("/admin/guardrails", params={"id": "mine"}, headers=ggw.admin()).status_code == 200
    rules = {r["id"]: r for r in view(ggw)["rules"]}
    assert "mine" not in rules and rules["pii_email"]["enabled"] is False and rules["pii_email"]["action"] == "redact"
    assert view(ggw)["active"] is False


def test_viewers_read_admins_write(ggw: InProcessGateway) -> None:
    assert ggw.client.get("/admin/guardrails").status_code == 401
    viewer = ggw.client.post("/admin/keys", headers=ggw.admin(), json={"name": "guard viewer", "role": "viewer"})
    headers = {"X-Admin-Key": viewer.json()["key"]}
    assert ggw.client.get("/admin/guardrails/violations", headers=headers).status_code == 200
    assert post(ggw, {"enabled": False}, headers).status_code == 403
    assert ggw.client.delete("/admin/guardrails/violations", headers=headers).status_code == 403
    assert view(ggw)["enabled"] is True


def test_violations_are_bounded_and_cleared(tmp_path: Path) -> None:
    config = tmp_path / "paygate.json"
    config.write_text('{"guardrails": {"maxViolations": 2, "includeContext": true}}')
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", str(config)) as gw:
        assert post(gw, {"id": "pii_email", "enabled": True, "action": "log", "scope": "input"}).status_code == 200
        key = gw.create_key(10)
        for _ in range(3):
            echo(gw, "x@y.io and z@y.io", key)
        listed = violations(gw)
        assert listed["total"] == 2 and listed["max"] == 2
        assert listed["violations"][0]["paths"] == ["$.text"] and listed["violations"][0]["count"] == 2
        cleared = gw.client.delete("/admin/guardrails/violations", headers=gw.admin())
        assert cleared.json() == {"cleared": 2} and violations(gw)["total"] == 0


def test_rules_and_the_toggle_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-guardrails") as gw:
        assert post(gw, {"id": "pii_ssn", "enabled": True, "action": "block"}).status_code == 200
        assert post(gw, {"id": "mine", "pattern": "TOPSECRET", "action": "redact"}).status_code == 200
    with running_inprocess_gateway(*args, state_file=state, admin_key="admin-key-for-guardrails") as gw:
        rules = {r["id"]: r for r in view(gw)["rules"]}
        assert rules["pii_ssn"]["enabled"] and rules["pii_ssn"]["action"] == "block"
        assert rules["mine"]["pattern"] == "TOPSECRET"
        key = gw.create_key(5)
        assert echo(gw, "123-45-6789", key)["error"]["data"]["rules"] == ["pii_ssn"]
        assert echo(gw, "a TOPSECRET b", key)["result"]["content"][0]["text"] == "a [REDACTED:mine] b"


def test_an_answer_from_the_cache_is_screened_too(ggw: InProcessGateway) -> None:
    assert ggw.client.post("/admin/cache", json={"ttlSeconds": 60}, headers=ggw.admin()).status_code == 200
    try:
        key = ggw.create_key(10)
        assert echo(ggw, "PROJECT-777 and bob@example.com", key)["result"]["content"][0]["text"].startswith("PROJECT")
        assert ggw.balance(key) == 7  # ran and was cached before any rule
        assert post(ggw, {"id": "pii_email", "enabled": True, "action": "redact", "scope": "output"}).status_code == 200
        hit = ggw.rpc("tools/call", {"name": "echo", "arguments": {"text": "PROJECT-777 and bob@example.com"}}, key=key)
        assert hit.headers["x-cache"] == "HIT"
        assert hit.json()["result"]["content"][0]["text"] == "PROJECT-777 and [REDACTED:pii_email]"
        block = {"id": "codename", "pattern": "PROJECT-[0-9]{3}", "action": "block", "scope": "output"}
        assert post(ggw, block).status_code == 200
        blocked = echo(ggw, "PROJECT-777 and bob@example.com", key)
        assert (
            blocked["error"]["data"]["reason"] == "guardrail_violation"
            and blocked["error"]["data"]["scope"] == "output"
        )
        assert ggw.balance(key) == 7  # cache hits cost nothing, blocked or not
    finally:
        ggw.client.post("/admin/cache", json={"ttlSeconds": 0}, headers=ggw.admin())
        ggw.client.delete("/admin/cache", headers=ggw.admin())
