"""Tenants through the real CLI (docs/tenants.md): a tenant's quota and its suspension refuse its keys'
calls before any charge, a key outside it is untouched, and a restart keeps the tenant, the binding, the
suspension and the day's usage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support import ECHO_COMMAND, Gateway, running_gateway


def _tenants(gw: Gateway, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    resp = gw.client.post("/admin/tenants", json=body, headers=gw.admin())
    assert resp.status_code == status, resp.text
    return dict(resp.json())


def _reason(gw: Gateway, key: str) -> str | None:
    reply = gw.call_tool("echo", {"text": "hi"}, key)
    return reply["error"]["data"]["reason"] if "error" in reply else None


def test_a_tenants_quota_and_suspension_refuse_before_any_charge_and_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    admin = "tenant-e2e-admin-key-0123456789"
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_gateway(*args, state_file=state, admin_key=admin) as gw:
        tenant = _tenants(gw, {"action": "create", "name": "Acme", "quota": {"dailyCalls": 2}}, 201)
        key, outsider = gw.create_key(10), gw.create_key(10)
        _tenants(gw, {"action": "bind", "id": tenant["id"], "key": key})
        assert [_reason(gw, key) for _ in range(3)] == [None, None, "tenant_quota_exceeded"]
        assert gw.balance(key) == 8
        _tenants(gw, {"action": "suspend", "id": tenant["id"], "reason": "unpaid"})
        assert _reason(gw, key) == "tenant_suspended" and gw.balance(key) == 8
        assert _reason(gw, outsider) is None
    with running_gateway(*args, state_file=state, admin_key=admin) as again:
        view = again.client.get("/admin/tenants", params={"id": tenant["id"]}, headers=again.admin()).json()
        assert view["status"] == "suspended" and view["keyCount"] == 1
        assert view["usage"]["today"] == {"calls": 2, "credits": 2}
        assert _reason(again, key) == "tenant_suspended"
        _tenants(again, {"action": "activate", "id": tenant["id"]})
        assert _reason(again, key) == "tenant_quota_exceeded"  # the day's two calls were recounted
        assert again.balance(key) == 8
