"""Key templates (/keys/templates) and `template` on POST /keys, against a real gateway."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from paygate.core.keys import hash_key
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

FREE_TIER = {
    "name": "free-tier",
    "description": "Free plan",
    "credits": 50,
    "allowedTools": ["add", "echo"],
    "deniedTools": ["fail"],
    "tags": {"plan": "free"},
    "namespace": "public",
    "expiryTtlSeconds": 3600,
    "spendingLimit": 200,
    "quota": {"dailyCallLimit": 10},
    "ipAllowlist": ["127.0.0.1"],
}


def post(gw: InProcessGateway, path: str, body: dict[str, Any]) -> httpx.Response:
    return gw.client.post(path, headers=gw.admin(), json=body)


def templates(gw: InProcessGateway) -> dict[str, dict[str, Any]]:
    resp = gw.client.get("/keys/templates", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return {t["name"]: t for t in resp.json()["templates"]}


def key_count(gw: InProcessGateway) -> int:
    return len(gw.client.get("/keys", headers=gw.admin()).json())


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def save(gw: InProcessGateway, body: dict[str, Any]) -> dict[str, Any]:
    resp = post(gw, "/keys/templates", body)
    assert resp.status_code in (200, 201), resp.text
    return dict(resp.json())


def test_a_template_is_created_listed_updated_and_deleted(gw: InProcessGateway) -> None:
    resp = post(gw, "/keys/templates", {**FREE_TIER, "name": "crud"})
    assert resp.status_code == 201 and resp.json()["message"] == "Template created"
    listed = templates(gw)["crud"]
    assert listed["credits"] == 50 and listed["tags"] == {"plan": "free"} and listed["expiryTtlSeconds"] == 3600
    assert listed["quota"]["dailyCallLimit"] == 10
    updated = post(gw, "/keys/templates", {"name": "crud", "credits": 7})
    assert updated.status_code == 200 and updated.json()["message"] == "Template updated"
    again = templates(gw)["crud"]
    assert again["credits"] == 7 and "tags" not in again  # an update replaces the whole definition
    assert again["createdAt"] == listed["createdAt"]
    deleted = post(gw, "/keys/templates/delete", {"name": "crud"})
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert "crud" not in templates(gw)
    assert post(gw, "/keys/templates/delete", {"name": "crud"}).status_code == 404
    kinds = [e["type"] for e in gw.events() if e["type"].startswith("template.") and e["data"]["name"] == "crud"]
    assert kinds == ["template.created", "template.updated", "template.deleted"]


def test_a_key_made_from_a_template_inherits_its_fields(gw: InProcessGateway) -> None:
    save(gw, FREE_TIER)
    resp = post(gw, "/keys", {"name": "new-user", "template": "free-tier"})
    assert resp.status_code == 201, resp.text
    key = resp.json()
    assert key["template"] == "free-tier"
    assert (
        key["credits"],
        key["allowedTools"],
        key["deniedTools"],
        key["tags"],
        key["namespace"],
        key["spendingLimit"],
        key["ipAllowlist"],
    ) == (50, ["add", "echo"], ["fail"], {"plan": "free"}, "public", 200, ["127.0.0.1"])
    assert key["quota"]["dailyCallLimit"] == 10
    assert abs(epoch(key["expiresAt"]) - (time.time() + 3600)) < 60
    assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, key["key"])
    assert gw.call_tool("fail", {}, key["key"])["error"]["data"]["reason"] == "tool_not_allowed"
    created = [e for e in gw.events("key.created") if e["data"]["keyMasked"] == key["keyMasked"]]
    assert created[0]["data"]["template"] == "free-tier"


def test_explicit_fields_override_the_template(gw: InProcessGateway) -> None:
    save(gw, {**FREE_TIER, "name": "override-me"})
    key = post(
        gw,
        "/keys",
        {
            "name": "vip",
            "template": "override-me",
            "credits": 500,
            "tags": {"plan": "vip"},
            "expiresIn": 60,
            "allowedTools": [],
        },
    ).json()
    assert (key["credits"], key["tags"], key["allowedTools"], key["namespace"]) == (500, {"plan": "vip"}, [], "public")
    assert abs(epoch(key["expiresAt"]) - (time.time() + 60)) < 30
    no_expiry = post(gw, "/keys", {"template": "override-me", "expiresAt": "2099-01-01T00:00:00Z"}).json()
    assert no_expiry["expiresAt"].startswith("2099-01-01")


def test_a_template_without_ttl_makes_keys_that_never_expire(gw: InProcessGateway) -> None:
    save(gw, {"name": "forever", "credits": 3, "expiryTtlSeconds": 0})
    key = post(gw, "/keys", {"template": "forever"}).json()
    assert key["expiresAt"] is None and key["credits"] == 3 and key["namespace"] == "default"


def test_an_unknown_template_is_a_404_that_creates_no_key(gw: InProcessGateway) -> None:
    before = key_count(gw)
    resp = post(gw, "/keys", {"name": "x", "template": "no-such-template"})
    assert resp.status_code == 404 and "no-such-template" in resp.json()["error"]
    assert post(gw, "/keys", {"template": "bad name"}).status_code == 400
    assert key_count(gw) == before


def test_a_bad_explicit_field_on_a_templated_key_is_still_a_400(gw: InProcessGateway) -> None:
    save(gw, {"name": "strict", "credits": 1})
    before = key_count(gw)
    assert post(gw, "/keys", {"template": "strict", "credits": -1}).status_code == 400
    assert post(gw, "/keys", {"template": "strict", "ipAllowlist": ["nope"]}).status_code == 400
    assert key_count(gw) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "has space"},
        {"name": "x" * 101},
        {"name": "t", "credits": -1},
        {"name": "t", "credits": "5"},
        {"name": "t", "unknown": 1},
        {"name": "t", "ipAllowlist": ["300.1.1.1"]},
        {"name": "t", "expiryTtlSeconds": -1},
        {"name": "t", "namespace": "bad space"},
        {"name": "t", "tags": {"k": "v" * 101}},
        {"name": "t", "quota": {"dailyCallLimit": -1}},
        {"name": "t", "autoTopup": {"threshold": 1, "amount": 0}},
        {"name": "t", "description": "d" * 501},
        {"name": "t", "allowedTools": [""]},
        {"name": "t", "deniedTools": ["t" * 201]},
        {"name": "t", "quota": {"dailyCreditLimit": 10**13}},
        {"name": "t", "autoTopup": {"threshold": 1, "amount": 5, "maxDaily": 1001}},
    ],
)
def test_bad_templates_are_400s_that_save_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = templates(gw)
    resp = post(gw, "/keys/templates", body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert templates(gw) == before


def test_bad_template_deletions_are_400s(gw: InProcessGateway) -> None:
    assert post(gw, "/keys/templates/delete", {}).status_code == 400
    assert post(gw, "/keys/templates/delete", {"name": 5}).status_code == 400


def test_at_most_100_templates_exist() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND) as gw:
        for i in range(100):
            assert post(gw, "/keys/templates", {"name": f"t{i}", "credits": i}).status_code == 201
        resp = post(gw, "/keys/templates", {"name": "one-more"})
        assert resp.status_code == 409 and "100" in resp.json()["error"]
        assert post(gw, "/keys/templates", {"name": "t5", "credits": 55}).status_code == 200  # updates still work
        listed = gw.client.get("/keys/templates", headers=gw.admin()).json()
        assert listed["count"] == 100 and "one-more" not in {t["name"] for t in listed["templates"]}


def test_templates_survive_a_restart_and_carry_auto_topup_to_keys(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    args = ("--server", ECHO_COMMAND)
    with running_inprocess_gateway(*args, state_file=state) as gw:
        save(gw, {"name": "refill", "credits": 9, "autoTopup": {"threshold": 5, "amount": 20, "maxDaily": 2}})
    with running_inprocess_gateway(*args, state_file=state) as gw:
        assert templates(gw)["refill"]["autoTopup"] == {"threshold": 5, "amount": 20, "maxDaily": 2}
        raw = post(gw, "/keys", {"template": "refill"}).json()["key"]
        assert gw.balance(raw) == 9
    with sqlite3.connect(state) as db:
        doc = json.loads(db.execute("SELECT doc FROM keys WHERE key_hash = ?", (hash_key(raw),)).fetchone()[0])
    assert doc["auto_topup"] == {"threshold": 5, "amount": 20, "maxDaily": 2}
