"""Content controls through the real CLI, in front of the real echo server over stdio: a schema refusal and
a guardrail block cost nothing, a redaction reaches the server, and the rules survive a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import ECHO_COMMAND, Gateway, running_gateway, text_of

pytestmark = pytest.mark.e2e


def call(gw: Gateway, arguments: dict[str, Any], key: str) -> dict[str, Any]:
    return dict(gw.rpc("tools/call", {"name": "echo", "arguments": arguments}, key=key).json())


def test_schema_and_guardrails_refuse_before_any_charge_and_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "echo:2")
    schema = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 40}}, "required": ["text"]}
    with running_gateway(*args, state_file=state, admin_key="admin-key-content-e2e") as gw:
        admin = gw.admin()
        assert (
            gw.client.post("/admin/tools/schema", json={"tool": "echo", "schema": schema}, headers=admin).status_code
            == 200
        )
        block = {"id": "secret_aws_key", "enabled": True, "action": "block", "scope": "input"}
        assert gw.client.post("/admin/guardrails", json=block, headers=admin).status_code == 200
        redact = {"id": "pii_email", "enabled": True, "action": "redact", "scope": "input"}
        assert gw.client.post("/admin/guardrails", json=redact, headers=admin).status_code == 200
        key = gw.create_key(10)
        invalid = call(gw, {"text": "x" * 41}, key)
        assert invalid["error"]["code"] == -32602 and invalid["error"]["data"]["reason"] == "invalid_arguments"
        assert invalid["error"]["data"]["errors"][0]["path"] == "$.text"
        blocked = call(gw, {"text": "key AKIAABCDEFGHIJKLMNOP"}, key)
        assert blocked["error"]["code"] == -32602 and blocked["error"]["data"]["rules"] == ["secret_aws_key"]
        assert gw.balance(key) == 10
        assert text_of(call(gw, {"text": "write to x@example.org"}, key)) == "write to [REDACTED:pii_email]"
        assert gw.balance(key) == 8
        listed = gw.client.get("/admin/guardrails/violations", headers=admin).json()
        assert {v["ruleId"] for v in listed["violations"]} == {"secret_aws_key", "pii_email"}
        assert "AKIA" not in str(listed) and "x@example.org" not in gw.stderr()
    with running_gateway(*args, state_file=state, admin_key="admin-key-content-e2e") as gw:
        key = gw.create_key(10)
        assert call(gw, {"text": 7}, key)["error"]["data"]["reason"] == "invalid_arguments"
        assert call(gw, {"text": "AKIAABCDEFGHIJKLMNOP"}, key)["error"]["data"]["reason"] == "guardrail_violation"
        assert gw.balance(key) == 10


def test_a_request_transform_reaches_the_real_server_and_the_call_is_charged_its_price() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--tool-price", "echo:2") as gw:
        ops = [{"op": "rename", "from": "message", "to": "text"}]
        body = {"tool": "echo", "direction": "request", "operations": ops}
        assert gw.client.post("/admin/transforms", json=body, headers=gw.admin()).status_code == 200
        key = gw.create_key(10)
        assert text_of(call(gw, {"message": "renamed on the way"}, key)) == "renamed on the way"
        assert gw.balance(key) == 8
