"""The global access rules through the real CLI (docs/access-rules.md): an IP rule and a signing key, set
over the admin API of a real gateway process in front of a real MCP server. The edge cases run
in-process: tests/api/test_ip_access.py, tests/api/test_signing.py."""

from __future__ import annotations

import orjson

from paygate.policy.signing import sign
from tests.support import ECHO_COMMAND, running_gateway, text_of


def test_ip_rules_and_signing_on_a_real_gateway() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--trusted-proxies", "127.0.0.1") as gw:
        key = gw.create_key(10)
        rule = gw.client.post("/admin/ip-access", json={"enabled": True, "deny": ["10.0.0.0/8"]}, headers=gw.admin())
        assert rule.status_code == 200, rule.text
        params = {"name": "echo", "arguments": {"text": "hi"}}
        refused = gw.rpc("tools/call", params, key=key, headers={"X-Forwarded-For": "10.0.0.1"})
        assert refused.status_code == 403 and refused.json()["error"]["data"]["reason"] == "ip_blocked"
        assert text_of(gw.call_tool("echo", {"text": "hi"}, key)) == "hi"

        secret = gw.client.post("/admin/signing", json={"key": key}, headers=gw.admin()).json()["secret"]
        body = orjson.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params})
        headers = {"X-API-Key": key, "Content-Type": "application/json", "Accept": "application/json"}
        assert gw.client.post("/mcp", content=body, headers=headers).status_code == 401
        signed = gw.client.post("/mcp", content=body, headers={**headers, "X-Signature": sign(secret, body)})
        assert text_of(signed.json()) == "hi"
        assert gw.balance(key) == 8
