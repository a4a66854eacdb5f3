"""Usage plans: GET/POST/DELETE /admin/plans and POST /admin/keys/plan, enforced at the gate."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, text_of, write_config


def unique(prefix: str = "plan") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def plans(gw: InProcessGateway) -> dict[str, dict[str, Any]]:
    resp = gw.client.get("/admin/plans", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    assert resp.json()["count"] == len(resp.json()["plans"])
    return {p["name"]: p for p in resp.json()["plans"]}


def make_plan(gw: InProcessGateway, **fields: Any) -> dict[str, Any]:
    body = {"name": unique(), **fields}
    resp = gw.client.post("/admin/plans", headers=gw.admin(), json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def assign(gw: InProcessGateway, key: str, plan: str | None) -> Any:
    return gw.client.post("/admin/keys/plan", headers=gw.admin(), json={"key": key, "plan": plan})


def test_a_plan_is_created_with_defaults_and_listed(gw: InProcessGateway) -> None:
    name = unique("pro")
    resp = gw.client.post(
        "/admin/plans",
        headers=gw.admin(),
        json={
            "name": name,
            "description": "Pro tier",
            "rateLimitPerMin": 120,
            "creditMultiplier": 1.5,
            "quota": {"dailyCallLimit": 1000},
            "allowedTools": ["echo", "add"],
            "deniedTools": ["fail"],
        },
    )
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    assert plan["name"] == name and plan["description"] == "Pro tier" and plan["rateLimitPerMin"] == 120
    assert plan["creditMultiplier"] == 1.5 and plan["keyCount"] == 0
    assert plan["quota"] == {
        "dailyCallLimit": 1000,
        "monthlyCallLimit": 0,
        "dailyCreditLimit": 0,
        "monthlyCreditLimit": 0,
    }
    assert plan["allowedTools"] == ["echo", "add"] and plan["deniedTools"] == ["fail"]
    assert plan["createdAt"].endswith("Z") and plan["updatedAt"] == plan["createdAt"]
    assert plans(gw)[name] == plan
    event = gw.events("plan.created")[-1]
    assert event["data"]["plan"] == name and event["actor"] == "admin"


def test_posting_an_existing_plan_updates_only_the_given_fields(gw: InProcessGateway) -> None:
    plan = make_plan(gw, description="first", rateLimitPerMin=10, creditMultiplier="2")
    resp = gw.client.post("/admin/plans", headers=gw.admin(), json={"name": plan["name"], "rateLimitPerMin": 20})
    assert resp.status_code == 200, resp.text
    updated = resp.json()
    assert updated["rateLimitPerMin"] == 20 and updated["description"] == "first"
    assert updated["creditMultiplier"] == 2 and updated["createdAt"] == plan["createdAt"]
    assert plans(gw)[plan["name"]]["rateLimitPerMin"] == 20
    event = gw.events("plan.updated")[-1]
    assert event["data"] == {"plan": plan["name"], "fields": ["rateLimitPerMin"]}


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "bad name"},
        {"name": ""},
        {"name": "x" * 65},
        {"creditMultiplier": 0},
        {"creditMultiplier": -1},
        {"creditMultiplier": 100.5},
        {"creditMultiplier": 1.23456},
        {"creditMultiplier": "abc"},
        {"creditMultiplier": "NaN"},
        {"creditMultiplier": True},
        {"rateLimitPerMin": -1},
        {"rateLimitPerMin": "5"},
        {"quota": {"dailyCallLimit": -1}},
        {"quota": {"weeklyCallLimit": 3}},
        {"allowedTools": "echo"},
        {"deniedTools": [""]},
        {"description": "x" * 501},
        {"surprise": 1},
    ],
)
def test_bad_plan_requests_are_400_and_change_nothing(gw: InProcessGateway, fields: dict[str, Any]) -> None:
    existing = make_plan(gw, rateLimitPerMin=7)
    before = plans(gw)
    body = {"name": existing["name"], **fields}
    resp = gw.client.post("/admin/plans", headers=gw.admin(), json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert plans(gw) == before


def test_a_key_on_a_plan_pays_the_multiplied_price_and_obeys_its_acl(gw: InProcessGateway) -> None:
    plan = make_plan(gw, creditMultiplier=2.5, deniedTools=["add"])
    key = gw.create_key(100)
    resp = assign(gw, key, plan["name"])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"keyMasked": f"{key[:7]}…{key[-4:]}", "plan": plan["name"], "previousPlan": None}
    assert text_of(gw.call_tool("echo", {"text": "hi"}, key)) == "hi"
    assert gw.balance(key) == 97  # price 1 * 2.5, rounded up
    denied = gw.call_tool("add", {"a": 1, "b": 2}, key)
    assert "error" in denied and gw.balance(key) == 97
    assert plans(gw)[plan["name"]]["keyCount"] == 1
    event = gw.events("key.plan_assigned")[-1]
    assert event["data"]["plan"] == plan["name"] and key not in str(event)

    off = assign(gw, key, None)
    assert off.status_code == 200 and off.json()["previousPlan"] == plan["name"]
    assert text_of(gw.call_tool("add", {"a": 1, "b": 2}, key)) == "3"
    assert gw.balance(key) == 96


def test_a_plan_can_be_assigned_through_the_key_alias(gw: InProcessGateway) -> None:
    plan = make_plan(gw)
    key = gw.create_key(5)
    alias = unique("alias")
    assert gw.client.post("/keys/alias", headers=gw.admin(), json={"key": key, "alias": alias}).status_code == 200
    resp = assign(gw, alias, plan["name"])
    assert resp.status_code == 200 and resp.json()["plan"] == plan["name"]
    assert plans(gw)[plan["name"]]["keyCount"] == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"key": "pg_nosuchkey000000000000", "plan": "PLAN"}, 404),
        ({"key": "KEY", "plan": "no-such-plan"}, 404),
        ({"key": "KEY"}, 400),
        ({"key": "KEY", "plan": "bad name"}, 400),
        ({"plan": "PLAN"}, 400),
        ({"key": "KEY", "plan": 3}, 400),
    ],
)
def test_bad_assignments_change_nothing(gw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    plan = make_plan(gw)
    key = gw.create_key(5)
    filled = {k: (key if v == "KEY" else plan["name"] if v == "PLAN" else v) for k, v in body.items()}
    resp = gw.client.post("/admin/keys/plan", headers=gw.admin(), json=filled)
    assert resp.status_code == status, resp.text
    assert plans(gw)[plan["name"]]["keyCount"] == 0


def test_a_revoked_key_cannot_be_put_on_a_plan(gw: InProcessGateway) -> None:
    plan = make_plan(gw)
    key = gw.create_key(5)
    gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": key})
    assert assign(gw, key, plan["name"]).status_code == 409


def test_a_plan_in_use_cannot_be_deleted_until_its_keys_move(gw: InProcessGateway) -> None:
    plan = make_plan(gw)
    key = gw.create_key(5)
    assign(gw, key, plan["name"])
    refused = gw.client.delete("/admin/plans", params={"name": plan["name"]}, headers=gw.admin())
    assert refused.status_code == 409 and "1 key" in refused.json()["error"]
    assert plan["name"] in plans(gw)
    assign(gw, key, None)
    resp = gw.client.delete("/admin/plans", params={"name": plan["name"]}, headers=gw.admin())
    assert resp.status_code == 200 and resp.json()["deleted"] is True
    assert plan["name"] not in plans(gw)
    assert gw.events("plan.deleted")[-1]["data"] == {"plan": plan["name"]}


@pytest.mark.parametrize(("params", "status"), [({"name": "no-such-plan"}, 404), ({}, 400), ({"name": ""}, 400)])
def test_deleting_an_unknown_plan_or_without_a_name_changes_nothing(
    gw: InProcessGateway, params: dict[str, str], status: int
) -> None:
    before = plans(gw)
    assert gw.client.delete("/admin/plans", params=params, headers=gw.admin()).status_code == status
    assert plans(gw) == before


def test_plans_and_assignments_survive_a_restart(tmp_path: Path) -> None:
    state_file = str(tmp_path / "s.db")
    admin = "admin_plans_restart_0123456789"
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state_file, admin_key=admin) as gw:
        plan = make_plan(gw, creditMultiplier=3)
        key = gw.create_key(10)
        assign(gw, key, plan["name"])
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state_file, admin_key=admin) as gw:
        assert plans(gw)[plan["name"]]["keyCount"] == 1
        assert text_of(gw.call_tool("echo", {"text": "x"}, key)) == "x"
        assert gw.balance(key) == 7


@pytest.mark.parametrize(("multiplier", "price"), [(1.1, 11), ("0.7", 7), (2.3, 23), (0.0001, 1), ("99.9999", 1000)])
def test_the_multiplier_is_exact_decimal_not_binary_float(tmp_path: Path, multiplier: float | str, price: int) -> None:
    # 10 * 1.1 is 11.000000000000002 in binary floating point: rounded up, that would charge 12
    config = write_config(tmp_path, {"defaultCreditsPerCall": 10, "globalRateLimitPerMin": 0})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--config", config) as gw:
        plan = make_plan(gw, creditMultiplier=multiplier)
        key = gw.create_key(2000)
        assert assign(gw, key, plan["name"]).status_code == 200
        assert text_of(gw.call_tool("echo", {"text": "x"}, key)) == "x"
        assert gw.balance(key) == 2000 - price
