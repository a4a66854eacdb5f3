"""Key groups: /groups CRUD, assign and remove — validation, conflicts, aliases, events, persistence,
and that the gate reads what these endpoints store."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked


def post(gw: InProcessGateway, path: str, body: dict[str, Any]) -> Any:
    return gw.client.post(path, json=body, headers=gw.admin())


def groups(gw: InProcessGateway) -> dict[str, dict[str, Any]]:
    resp = gw.client.get("/groups", headers=gw.admin())
    assert resp.status_code == 200
    return {g["id"]: g for g in resp.json()}


def make_group(gw: InProcessGateway, name: str, **fields: Any) -> dict[str, Any]:
    resp = post(gw, "/groups", {"name": name, **fields})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def denial(reply: dict[str, Any]) -> str | None:
    return reply["error"]["data"]["reason"] if "error" in reply else None


def test_create_returns_the_group_with_an_id_and_defaults_and_lists_it(gw: InProcessGateway) -> None:
    group = make_group(
        gw,
        "create-basic",
        allowedTools=["echo"],
        rateLimitPerMin=30,
        ipAllowlist=["::ffff:10.0.0.1", "10.1.2.3/16"],
        quota={"dailyCallLimit": 100},
        toolPricing={"echo": {"creditsPerCall": 2}},
        maxSpendingLimit=500,
        tags={"tier": "free"},
        description="the free tier",
    )
    assert re.fullmatch(r"grp_[0-9a-f]{24}", group["id"])
    assert group["ipAllowlist"] == ["10.0.0.1", "10.1.0.0/16"]
    assert group["quota"] == {
        "dailyCallLimit": 100,
        "monthlyCallLimit": 0,
        "dailyCreditLimit": 0,
        "monthlyCreditLimit": 0,
    }
    assert group["toolPricing"] == {"echo": {"creditsPerCall": 2}} and group["deniedTools"] == []
    assert group["active"] is True and group["createdAt"] and group["memberCount"] == 0
    assert groups(gw)[group["id"]] == group
    [event] = [e for e in gw.events("group.created") if e["data"]["groupId"] == group["id"]]
    assert event["data"]["name"] == "create-basic"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": 5},
        {"name": "g", "allowedTools": "echo"},
        {"name": "g", "deniedTools": [""]},
        {"name": "g", "rateLimitPerMin": -1},
        {"name": "g", "rateLimitPerMin": "5"},
        {"name": "g", "ipAllowlist": ["10.0.0.256"]},
        {"name": "g", "ipAllowlist": ["10.0.0.1"] * 101},
        {"name": "g", "quota": {"dailyCallLimit": -1}},
        {"name": "g", "quota": {"hourlyCallLimit": 1}},
        {"name": "g", "toolPricing": {"echo": {"creditsPerCall": -1}}},
        {"name": "g", "toolPricing": {"echo": 2}},
        {"name": "g", "toolPricing": {"echo": {"creditsPerCall": 1, "rateLimitPerMin": 5}}},
        {"name": "g", "maxSpendingLimit": -5},
        {"name": "g", "tags": {"k": 1}},
        {"name": "g", "color": "red"},
        {"name": "g", "tags": {f"k{i}": "v" for i in range(51)}},
        {"name": "g", "description": "d" * 501},
        {"name": "   "},
        {"name": "a\u0000b"},
        {"name": "two\nlines"},
    ],
)
def test_create_rejects_bad_input_and_creates_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = groups(gw)
    resp = post(gw, "/groups", body)
    assert resp.status_code == 400 and resp.json()["error"].startswith("Invalid request")
    assert groups(gw) == before


def test_group_names_are_unique_ignoring_case(gw: InProcessGateway) -> None:
    make_group(gw, "Unique-Name")
    before = groups(gw)
    resp = post(gw, "/groups", {"name": "unique-name"})
    assert resp.status_code == 409 and "already exists" in resp.json()["error"]
    assert groups(gw) == before


def test_group_names_are_trimmed_so_padding_cannot_make_a_second_group_of_one_name(gw: InProcessGateway) -> None:
    group = make_group(gw, "  Padded Name ")
    assert group["name"] == "Padded Name"
    before = groups(gw)
    assert post(gw, "/groups", {"name": "padded name  "}).status_code == 409
    assert post(gw, "/groups/update", {"id": group["id"], "name": "   "}).status_code == 400
    assert groups(gw) == before


def test_update_changes_only_the_fields_sent_and_quota_null_removes_the_quota(gw: InProcessGateway) -> None:
    group = make_group(gw, "update-me", allowedTools=["echo"], quota={"dailyCallLimit": 5}, rateLimitPerMin=10)
    resp = post(gw, "/groups/update", {"id": group["id"], "rateLimitPerMin": 60, "quota": None, "name": "updated"})
    assert resp.status_code == 200, resp.text
    after = groups(gw)[group["id"]]
    assert after["rateLimitPerMin"] == 60 and after["quota"] is None and after["name"] == "updated"
    assert after["allowedTools"] == ["echo"] and after["createdAt"] == group["createdAt"]
    [event] = [e for e in gw.events("group.updated") if e["data"]["groupId"] == group["id"]]
    assert event["data"]["changes"] == ["name", "quota", "rateLimitPerMin"]
    # groupId is accepted as well as id
    assert post(gw, "/groups/update", {"groupId": group["id"], "deniedTools": ["fail"]}).status_code == 200
    assert groups(gw)[group["id"]]["deniedTools"] == ["fail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"rateLimitPerMin": 5},
        {"id": "ID"},
        {"id": "ID", "groupId": "ID", "rateLimitPerMin": 1},
        {"id": "ID", "name": None},
        {"id": "ID", "allowedTools": None},
        {"id": "ID", "rateLimitPerMin": -1},
        {"id": "ID", "ipAllowlist": ["nope"]},
        {"id": "ID", "active": False},
    ],
)
def test_update_rejects_bad_input_and_changes_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    group = make_group(gw, f"bad-update-{len(groups(gw))}", rateLimitPerMin=7)
    body = {k: (group["id"] if v == "ID" else v) for k, v in body.items()}
    assert post(gw, "/groups/update", body).status_code == 400
    assert groups(gw)[group["id"]] == group


def test_update_to_a_taken_name_is_a_conflict_and_an_unknown_group_is_404(gw: InProcessGateway) -> None:
    make_group(gw, "taken-name")
    group = make_group(gw, "other-name")
    assert post(gw, "/groups/update", {"id": group["id"], "name": "TAKEN-name"}).status_code == 409
    assert groups(gw)[group["id"]]["name"] == "other-name"
    resp = post(gw, "/groups/update", {"id": "grp_" + "0" * 24, "rateLimitPerMin": 1})
    assert resp.status_code == 404 and resp.json()["error"] == "Group not found"


def test_assign_and_remove_a_key_by_key_or_alias_with_member_counts_and_events(gw: InProcessGateway) -> None:
    group = make_group(gw, "members")
    raw, other = gw.create_key(5), gw.create_key(5)
    assert post(gw, "/keys/alias", {"key": other, "alias": "group-member"}).status_code == 200
    resp = post(gw, "/groups/assign", {"groupId": group["id"], "key": raw})
    assert resp.status_code == 200 and resp.json()["keyMasked"] == masked(raw)
    assert post(gw, "/groups/assign", {"groupId": group["id"], "key": "group-member"}).status_code == 200
    assert groups(gw)[group["id"]]["memberCount"] == 2
    resp = post(gw, "/groups/remove", {"key": "group-member"})
    assert resp.status_code == 200 and resp.json()["groupId"] == group["id"]
    assert groups(gw)[group["id"]]["memberCount"] == 1
    assigned = [e["data"]["keyMasked"] for e in gw.events("group.key_assigned") if e["data"]["groupId"] == group["id"]]
    removed = [e["data"]["keyMasked"] for e in gw.events("group.key_removed") if e["data"]["groupId"] == group["id"]]
    assert assigned == [masked(raw), masked(other)] and removed == [masked(other)]


def test_assigning_a_key_in_another_group_moves_it(gw: InProcessGateway) -> None:
    first, second = make_group(gw, "move-from"), make_group(gw, "move-to")
    raw = gw.create_key(5)
    assert post(gw, "/groups/assign", {"groupId": first["id"], "key": raw}).status_code == 200
    resp = post(gw, "/groups/assign", {"groupId": second["id"], "key": raw})
    assert resp.status_code == 200 and resp.json()["previousGroupId"] == first["id"]
    listing = groups(gw)
    assert (listing[first["id"]]["memberCount"], listing[second["id"]]["memberCount"]) == (0, 1)


def test_assign_and_remove_refuse_what_cannot_be_done_and_change_nothing(gw: InProcessGateway) -> None:
    group = make_group(gw, "refusals")
    raw, revoked = gw.create_key(5), gw.create_key(5)
    assert post(gw, "/keys/revoke", {"key": revoked}).status_code == 200
    assert post(gw, "/groups/remove", {"key": raw}).status_code == 409  # not in a group
    assert post(gw, "/groups/assign", {"groupId": "grp_" + "0" * 24, "key": raw}).status_code == 404
    assert post(gw, "/groups/assign", {"groupId": group["id"], "key": "pg_" + "0" * 48}).status_code == 404
    assert post(gw, "/groups/remove", {"key": "no-such-alias"}).status_code == 404
    assert post(gw, "/groups/assign", {"groupId": group["id"], "key": revoked}).status_code == 409
    assert post(gw, "/groups/assign", {"groupId": group["id"], "key": raw}).status_code == 200
    assert post(gw, "/groups/assign", {"groupId": group["id"], "key": raw}).status_code == 409  # already in it
    for bad in (
        {"groupId": group["id"]},
        {"key": raw},
        {"groupId": 5, "key": raw},
        {"groupId": group["id"], "key": raw, "x": 1},
    ):
        assert post(gw, "/groups/assign", bad).status_code == 400, bad
    assert groups(gw)[group["id"]]["memberCount"] == 1
    assert len([e for e in gw.events("group.key_assigned") if e["data"]["groupId"] == group["id"]]) == 1


def test_delete_removes_the_group_and_releases_its_keys(gw: InProcessGateway) -> None:
    group = make_group(gw, "doomed", deniedTools=["echo"])
    raw = gw.create_key(5)
    assert post(gw, "/groups/assign", {"groupId": group["id"], "key": raw}).status_code == 200
    assert denial(gw.call_tool("echo", {"text": "x"}, raw)) == "tool_not_allowed"
    resp = post(gw, "/groups/delete", {"id": group["id"]})
    assert resp.status_code == 200 and resp.json()["keysReleased"] == 1
    assert group["id"] not in groups(gw)
    assert "result" in gw.call_tool("echo", {"text": "x"}, raw)  # the group's policy no longer applies
    assert post(gw, "/groups/remove", {"key": raw}).status_code == 409  # the key is in no group now
    [event] = [e for e in gw.events("group.deleted") if e["data"]["groupId"] == group["id"]]
    assert event["data"]["keysReleased"] == 1
    assert post(gw, "/groups/delete", {"groupId": group["id"]}).status_code == 404
    assert post(gw, "/groups/delete", {}).status_code == 400
    make_group(gw, "doomed")  # the name is free again


def test_the_gate_applies_the_group_policy_to_its_members(gw: InProcessGateway) -> None:
    group = make_group(gw, "priced", allowedTools=["echo", "add"], toolPricing={"add": {"creditsPerCall": 3}})
    raw = gw.create_key(10)
    assert post(gw, "/groups/assign", {"groupId": group["id"], "key": raw}).status_code == 200
    assert denial(gw.call_tool("fail", {}, raw)) == "tool_not_allowed"
    assert "result" in gw.call_tool("add", {"a": 1, "b": 2}, raw)
    assert gw.balance(raw) == 7


def test_groups_and_assignments_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        group = make_group(gw, "durable", deniedTools=["fail"], quota={"monthlyCallLimit": 9})
        raw = gw.create_key(5)
        assert post(gw, "/groups/assign", {"groupId": group["id"], "key": raw}).status_code == 200
        before = groups(gw)
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert groups(gw) == before and before[group["id"]]["memberCount"] == 1
        assert post(gw, "/groups/remove", {"key": raw}).json()["groupId"] == group["id"]


def test_the_number_of_groups_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from paygate.compose import keys as compose_keys
    from paygate.policy import memberships

    assert memberships.GROUPS.max_docs == 1000  # the documented bound; the run below uses a smaller one
    bound = 40
    monkeypatch.setattr(compose_keys, "GROUPS", dataclasses.replace(memberships.GROUPS, max_docs=bound))
    with running_inprocess_gateway("--server", ECHO_COMMAND) as gw:
        for i in range(bound):
            assert post(gw, "/groups", {"name": f"g{i}"}).status_code == 201
        resp = post(gw, "/groups", {"name": "one-too-many"})
        assert resp.status_code == 409 and str(bound) in resp.json()["error"]
        assert len(groups(gw)) == bound
