"""Tenants (docs/tenants.md): GET/POST/DELETE /admin/tenants — validation, conflicts, roles, events, usage
and the cross-tenant report, persistence across a restart — and the gate enforcing suspension, the
tenant's rate limit and its quota before any charge."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from paygate.audit.service import category_of
from tests.api.backup_support import backup, digest, restore
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked

NO_TENANT = "tnt_" + "0" * 24


def post(gw: InProcessGateway, body: dict[str, Any]) -> Any:
    return gw.client.post("/admin/tenants", json=body, headers=gw.admin())


def make(gw: InProcessGateway, name: str, **fields: Any) -> dict[str, Any]:
    resp = post(gw, {"action": "create", "name": name, **fields})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def act(gw: InProcessGateway, action: str, **fields: Any) -> dict[str, Any]:
    resp = post(gw, {"action": action, **fields})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def detail(gw: InProcessGateway, tenant_id: str) -> dict[str, Any]:
    resp = gw.client.get("/admin/tenants", params={"id": tenant_id}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def report(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/tenants", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def reason(reply: dict[str, Any]) -> str | None:
    return reply["error"]["data"]["reason"] if "error" in reply else None


def echo(gw: InProcessGateway, key: str) -> dict[str, Any]:
    return gw.call_tool("echo", {"text": "hi"}, key)


def test_create_shows_the_tenant_and_the_report_lists_it(gw: InProcessGateway) -> None:
    t = make(gw, "Acme", rateLimitPerMin=60, quota={"dailyCredits": 500}, tags={"plan": "gold"})
    assert re.fullmatch(r"tnt_[0-9a-f]{24}", t["id"])
    assert t["status"] == "active" and t["keyCount"] == 0 and t["rateLimitPerMin"] == 60
    assert t["quota"] == {"dailyCalls": 0, "monthlyCalls": 0, "dailyCredits": 500, "monthlyCredits": 0}
    assert "active" not in t and "memberCount" not in t
    listed = {x["id"]: x for x in report(gw)["tenants"]}
    assert listed[t["id"]]["usage"] == {"today": {"calls": 0, "credits": 0}, "month": {"calls": 0, "credits": 0}}
    assert report(gw)["limits"] == {"maxTenants": 10000, "maxKeysPerTenant": 1000}
    [event] = [e for e in gw.events("tenant.created") if e["data"]["tenantId"] == t["id"]]
    assert event["data"] == {"tenantId": t["id"], "name": "Acme", "status": "active", "rateLimitPerMin": 60}
    resp = gw.client.post("/admin/tenants", json={"name": "No action given"}, headers=gw.admin())
    assert resp.status_code == 201 and resp.json()["name"] == "No action given"  # action defaults to create


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"action": "create"},
        {"action": "create", "name": ""},
        {"action": "create", "name": "x", "rateLimitPerMin": -1},
        {"action": "create", "name": "x", "rateLimitPerMin": "5"},
        {"action": "create", "name": "x", "quota": {"calls": 1}},
        {"action": "create", "name": "x", "id": NO_TENANT},
        {"action": "create", "name": "x", "key": "pg_x"},
        {"action": "create", "name": "x", "status": "suspended"},
        {"action": "explode", "id": NO_TENANT},
        {"action": "update", "id": NO_TENANT},
        {"action": "update", "name": "y"},
        {"action": "update", "id": NO_TENANT, "name": None},
        {"action": "suspend"},
        {"action": "suspend", "id": NO_TENANT, "name": "y"},
        {"action": "activate", "id": NO_TENANT, "reason": "r"},
        {"action": "bind", "id": NO_TENANT},
        {"action": "bind", "key": "pg_x"},
        {"action": "bind", "id": NO_TENANT, "key": "pg_x", "apiKey": "pg_x"},
        {"action": "unbind"},
    ],
)
def test_invalid_bodies_are_400_and_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = report(gw)
    resp = post(gw, body)
    assert resp.status_code == 400, (body, resp.text)
    assert resp.json()["error"]
    assert report(gw) == before


def test_unknown_tenants_and_keys_are_404_and_duplicate_names_409(gw: InProcessGateway) -> None:
    t = make(gw, "Unique Co")
    assert post(gw, {"action": "create", "name": "unique co"}).status_code == 409
    assert post(gw, {"action": "suspend", "id": NO_TENANT}).status_code == 404
    assert gw.client.get("/admin/tenants", params={"id": NO_TENANT}, headers=gw.admin()).status_code == 404
    assert gw.client.delete("/admin/tenants", params={"id": NO_TENANT}, headers=gw.admin()).status_code == 404
    assert gw.client.delete("/admin/tenants", headers=gw.admin()).status_code == 400
    assert post(gw, {"action": "bind", "id": t["id"], "key": "pg_nope"}).status_code == 404
    assert post(gw, {"action": "activate", "id": t["id"]}).status_code == 409  # already active


def test_roles_a_viewer_reads_only(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/keys", json={"name": "v", "role": "viewer"}, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    viewer = {"X-Admin-Key": resp.json()["key"]}
    t = make(gw, "Viewed")
    assert gw.client.get("/admin/tenants", params={"id": t["id"]}, headers=viewer).status_code == 200
    assert gw.client.post("/admin/tenants", json={"name": "v2"}, headers=viewer).status_code == 403
    assert gw.client.delete("/admin/tenants", params={"id": t["id"]}, headers=viewer).status_code == 403
    assert gw.client.get("/admin/tenants").status_code == 401
    assert detail(gw, t["id"])["status"] == "active"


def test_bind_usage_and_a_key_in_one_tenant_at_a_time(gw: InProcessGateway) -> None:
    a, b = make(gw, "Bind A"), make(gw, "Bind B")
    key = gw.create_key(100)
    bound = act(gw, "bind", id=a["id"], key=key)
    assert bound["keyMasked"] == masked(key)
    assert post(gw, {"action": "bind", "id": b["id"], "key": key}).status_code == 409
    assert "result" in echo(gw, key) and "result" in echo(gw, key)
    view = detail(gw, a["id"])
    assert view["keyCount"] == 1 and [k["keyMasked"] for k in view["keys"]] == [masked(key)]
    assert key not in str(view)  # keys are shown masked only
    assert view["usage"]["today"] == {"calls": 2, "credits": 2} and view["usage"]["month"]["credits"] == 2
    totals = report(gw)["totals"]
    assert totals["today"]["calls"] >= 2 and totals["keys"] >= 1
    assert post(gw, {"action": "unbind", "id": b["id"], "key": key}).status_code == 409  # not in that one
    assert act(gw, "unbind", key=key)["id"] == a["id"]
    assert detail(gw, a["id"])["keyCount"] == 0
    act(gw, "bind", id=b["id"], apiKey=key)
    kinds = [e["type"] for e in gw.events() if e["data"].get("tenantId") in (a["id"], b["id"])]
    assert kinds.count("tenant.key_assigned") == 2 and kinds.count("tenant.key_removed") == 1


def test_a_suspended_tenants_keys_are_refused_before_any_charge(gw: InProcessGateway) -> None:
    t = make(gw, "Suspendable")
    key, other = gw.create_key(10), gw.create_key(10)
    act(gw, "bind", id=t["id"], key=key)
    view = act(gw, "suspend", id=t["id"], reason="unpaid invoice")
    assert view["status"] == "suspended" and view["suspendReason"] == "unpaid invoice"
    reply = echo(gw, key)
    assert reason(reply) == "tenant_suspended" and "Suspendable" in reply["error"]["message"]
    assert gw.client.get("/balance", headers={"X-API-Key": key}).status_code == 200  # the key itself still reads
    assert gw.balance(key) == 10
    assert "result" in echo(gw, other)  # another tenant's (or no tenant's) key is untouched
    assert act(gw, "activate", id=t["id"])["status"] == "active"
    assert "result" in echo(gw, key) and gw.balance(key) == 9
    types = [e["type"] for e in gw.events() if e["data"].get("tenantId") == t["id"]]
    assert "tenant.suspended" in types and "tenant.activated" in types
    metrics = gw.client.get("/metrics").text
    assert 'paygate_denials_total{reason="tenant_suspended"}' in metrics
    assert 'paygate_tenants_total{status="active"}' in metrics and "paygate_tenant_keys_bound" in metrics


def test_the_tenant_rate_limit_counts_all_its_keys_together(gw: InProcessGateway) -> None:
    t = make(gw, "Rated", rateLimitPerMin=3)
    keys = [gw.create_key(10) for _ in range(2)]
    for key in keys:
        act(gw, "bind", id=t["id"], key=key)
    replies = [echo(gw, keys[i % 2]) for i in range(5)]
    assert [reason(r) for r in replies] == [None, None, None, "tenant_rate_limited", "tenant_rate_limited"]
    assert gw.balance(keys[0]) + gw.balance(keys[1]) == 17  # refused calls charged nothing


def test_the_tenant_quota_refuses_before_any_charge_and_update_lifts_it(gw: InProcessGateway) -> None:
    t = make(gw, "Quota Co", quota={"dailyCredits": 3})
    a, b = gw.create_key(10), gw.create_key(10)
    act(gw, "bind", id=t["id"], key=a)
    act(gw, "bind", id=t["id"], key=b)
    assert [reason(echo(gw, k)) for k in (a, b, a, b)] == [None, None, None, "tenant_quota_exceeded"]
    assert gw.balance(a) + gw.balance(b) == 17
    calls = [{"name": "echo", "arguments": {"text": "x"}}]
    assert gw.rpc("tools/call_batch", {"calls": calls}, key=b).json()["error"]["data"]["reason"] == (
        "tenant_quota_exceeded"
    )
    assert act(gw, "update", id=t["id"], quota={"dailyCredits": 5})["quota"]["dailyCredits"] == 5
    assert reason(echo(gw, b)) is None and gw.balance(b) == 8


def test_delete_unbinds_the_keys_and_erases_the_tenant(gw: InProcessGateway) -> None:
    t = make(gw, "Doomed")
    key = gw.create_key(5)
    act(gw, "bind", id=t["id"], key=key)
    act(gw, "suspend", id=t["id"])
    resp = gw.client.delete("/admin/tenants", params={"id": t["id"]}, headers=gw.admin())
    assert resp.status_code == 200 and resp.json()["keysReleased"] == 1
    assert t["id"] not in {x["id"] for x in report(gw)["tenants"]}
    assert "result" in echo(gw, key)  # unbound: the suspension went with the tenant
    assert make(gw, "Doomed")["id"] != t["id"]  # the name is free again


def test_a_rotated_key_stays_bound(gw: InProcessGateway) -> None:
    t = make(gw, "Rotating")
    key = gw.create_key(5)
    act(gw, "bind", id=t["id"], key=key)
    resp = gw.client.post("/keys/rotate", json={"key": key}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    new = resp.json()["newKey"]
    assert [k["keyMasked"] for k in detail(gw, t["id"])["keys"]] == [masked(new)]
    act(gw, "suspend", id=t["id"])
    assert reason(echo(gw, new)) == "tenant_suspended"


def test_tenants_bindings_and_usage_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    admin = "admin-key-for-tenant-tests"
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as first:
        t = make(first, "Durable", quota={"dailyCalls": 3})
        key = first.create_key(10)
        act(first, "bind", id=t["id"], key=key)
        assert "result" in echo(first, key) and "result" in echo(first, key)
        act(first, "suspend", id=t["id"], reason="r")
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as second:
        view = detail(second, t["id"])
        assert view["status"] == "suspended" and view["keyCount"] == 1
        assert view["usage"]["today"] == {"calls": 2, "credits": 2}  # recounted from the usage log
        assert reason(echo(second, key)) == "tenant_suspended"
        act(second, "activate", id=t["id"])
        assert "result" in echo(second, key)
        assert reason(echo(second, key)) == "tenant_quota_exceeded"
        assert second.balance(key) == 7


def test_a_backup_restores_tenants_and_bindings_and_refuses_a_malformed_tenant(gw: InProcessGateway) -> None:
    t = make(gw, "Backed Up", rateLimitPerMin=7)
    key = gw.create_key(5)
    act(gw, "bind", id=t["id"], key=key)
    act(gw, "suspend", id=t["id"], reason="r")
    snapshot = backup(gw)
    assert snapshot["data"]["documents"]["tenant"][t["id"]]["status"] == "suspended"
    bad = copy.deepcopy(snapshot)
    bad["data"]["documents"]["tenant"][t["id"]]["rateLimitPerMin"] = "lots"
    bad["checksum"] = digest(bad["data"])
    resp = restore(gw, bad, "overwrite")
    assert resp.status_code == 400 and "rateLimitPerMin" in resp.text
    act(gw, "activate", id=t["id"])
    act(gw, "unbind", key=key)
    assert restore(gw, snapshot, "overwrite").status_code == 200
    view = detail(gw, t["id"])
    assert view["status"] == "suspended" and [k["keyMasked"] for k in view["keys"]] == [masked(key)]
    assert reason(echo(gw, key)) == "tenant_suspended"


def test_suspension_is_audited_as_access_control(gw: InProcessGateway) -> None:
    t = make(gw, "Audited")
    act(gw, "suspend", id=t["id"])
    resp = gw.client.get("/audit", params={"types": "tenant.suspended", "limit": 1000}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    [entry] = [e for e in resp.json()["events"] if e["metadata"].get("tenantId") == t["id"]]
    assert entry["message"] == "Tenant suspended: Audited"
    assert category_of("tenant.suspended") == category_of("tenant.activated") == "access_control"
    assert category_of("tenant.created") == "config_change"


def test_an_admin_key_scoped_to_a_tenant_sees_only_that_tenant(gw: InProcessGateway) -> None:
    mine, other = make(gw, "Scoped Mine"), make(gw, "Scoped Other")
    key = gw.create_key(5)
    act(gw, "bind", id=mine["id"], key=key)
    create = {"name": "acme-viewer", "role": "viewer", "tenantId": mine["id"]}
    for bad in ({**create, "role": "admin"}, {**create, "tenantId": NO_TENANT}):
        assert gw.client.post("/admin/keys", json=bad, headers=gw.admin()).status_code == 400
    resp = gw.client.post("/admin/keys", json=create, headers=gw.admin())
    assert resp.status_code == 201 and resp.json()["tenantId"] == mine["id"]
    scoped = {"X-Admin-Key": resp.json()["key"]}
    listing = gw.client.get("/admin/tenants", headers=scoped).json()
    assert [t["id"] for t in listing["tenants"]] == [mine["id"]] and listing["totals"]["tenants"] == 1
    own = gw.client.get("/admin/tenants", params={"id": mine["id"]}, headers=scoped)
    assert own.status_code == 200 and [k["keyMasked"] for k in own.json()["keys"]] == [masked(key)]
    assert gw.client.get("/admin/tenants", params={"id": other["id"]}, headers=scoped).status_code == 404
    whoami = gw.client.get("/admin/whoami", headers=scoped).json()
    assert whoami["tenantId"] == mine["id"] and whoami["canChange"] is False
    for method, path in (("GET", "/keys"), ("GET", "/usage"), ("GET", "/audit"), ("GET", "/admin/spend-caps")):
        assert gw.client.request(method, path, headers=scoped).status_code == 403, path
    assert (
        gw.client.post("/admin/tenants", json={"action": "suspend", "id": mine["id"]}, headers=scoped).status_code
        == 403
    )
    assert detail(gw, mine["id"])["status"] == "active"
    [event] = [e for e in gw.events("admin_key.created") if e["data"].get("tenantId") == mine["id"]]
    assert event["data"]["role"] == "viewer"
