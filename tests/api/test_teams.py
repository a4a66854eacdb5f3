"""Teams: /teams CRUD, assign, remove, usage — validation, conflicts, aliases, events, persistence, and
that the gate reads the budget these endpoints store."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked

NO_TEAM = "team_" + "0" * 24


def post(gw: InProcessGateway, path: str, body: dict[str, Any]) -> Any:
    return gw.client.post(path, json=body, headers=gw.admin())


def teams(gw: InProcessGateway, include_inactive: bool = False) -> dict[str, dict[str, Any]]:
    params = {"includeInactive": "true"} if include_inactive else {}
    resp = gw.client.get("/teams", params=params, headers=gw.admin())
    assert resp.status_code == 200
    assert resp.json()["count"] == len(resp.json()["teams"])
    return {t["id"]: t for t in resp.json()["teams"]}


def make_team(gw: InProcessGateway, name: str, **fields: Any) -> dict[str, Any]:
    resp = post(gw, "/teams", {"name": name, **fields})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def usage(gw: InProcessGateway, team_id: str) -> dict[str, Any]:
    resp = gw.client.get("/teams/usage", params={"teamId": team_id}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def denial(reply: dict[str, Any]) -> str | None:
    return reply["error"]["data"]["reason"] if "error" in reply else None


def test_create_returns_the_team_with_an_id_and_lists_it(gw: InProcessGateway) -> None:
    team = make_team(
        gw, "Engineering", budget=10000, tags={"dept": "eng"}, quota={"dailyCalls": 1000, "monthlyCredits": 5}
    )
    assert re.fullmatch(r"team_[0-9a-f]{24}", team["id"])
    assert team["quota"] == {"dailyCalls": 1000, "monthlyCalls": 0, "dailyCredits": 0, "monthlyCredits": 5}
    assert team["budget"] == 10000 and team["active"] is True and team["memberCount"] == 0
    assert teams(gw)[team["id"]] == team
    assert make_team(gw, "no-quota")["quota"] == {
        "dailyCalls": 0,
        "monthlyCalls": 0,
        "dailyCredits": 0,
        "monthlyCredits": 0,
    }
    [event] = [e for e in gw.events("team.created") if e["data"]["teamId"] == team["id"]]
    assert event["data"] == {"teamId": team["id"], "name": "Engineering", "budget": 10000}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "t" * 101},
        {"name": "t", "budget": -1},
        {"name": "t", "budget": "100"},
        {"name": "t", "budget": 1.5},
        {"name": "t", "quota": {"dailyCalls": -1}},
        {"name": "t", "quota": {"calls": 1}},
        {"name": "t", "quota": {"dailyCallLimit": 1}},
        {"name": "t", "tags": {"a": 1}},
        {"name": "t", "members": []},
        {"name": " "},
        {"name": "tab\there"},
    ],
)
def test_create_rejects_bad_input_and_creates_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = teams(gw, include_inactive=True)
    resp = post(gw, "/teams", body)
    assert resp.status_code == 400 and resp.json()["error"].startswith("Invalid request")
    assert teams(gw, include_inactive=True) == before


def test_team_names_are_unique_among_active_teams(gw: InProcessGateway) -> None:
    team = make_team(gw, "Unique-Team")
    assert post(gw, "/teams", {"name": "unique-team"}).status_code == 409
    assert post(gw, "/teams/delete", {"teamId": team["id"]}).status_code == 200
    make_team(gw, "unique-team")  # a deleted team's name is free again
    assert make_team(gw, " Spaced Team  ")["name"] == "Spaced Team"
    assert post(gw, "/teams", {"name": "spaced team "}).status_code == 409  # padding makes no new name


def test_update_changes_only_the_fields_sent(gw: InProcessGateway) -> None:
    team = make_team(gw, "to-update", budget=100, tags={"a": "b"})
    resp = post(gw, "/teams/update", {"teamId": team["id"], "quota": {"dailyCalls": 10}, "description": "d"})
    assert resp.status_code == 200, resp.text
    after = teams(gw)[team["id"]]
    assert after["quota"]["dailyCalls"] == 10 and after["description"] == "d"
    assert after["budget"] == 100 and after["tags"] == {"a": "b"} and after["name"] == "to-update"
    assert post(gw, "/teams/update", {"teamId": team["id"], "quota": None}).status_code == 200
    assert teams(gw)[team["id"]]["quota"]["dailyCalls"] == 0
    changes = [e["data"]["changes"] for e in gw.events("team.updated") if e["data"]["teamId"] == team["id"]]
    assert changes == [["description", "quota"], ["quota"]]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"budget": 5},
        {"teamId": "ID"},
        {"teamId": "ID", "budget": -5},
        {"teamId": "ID", "name": None},
        {"teamId": "ID", "tags": None},
        {"teamId": "ID", "active": True},
        {"teamId": 7, "budget": 5},
    ],
)
def test_update_rejects_bad_input_and_changes_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    team = make_team(gw, f"bad-update-{len(teams(gw, include_inactive=True))}", budget=9)
    body = {k: (team["id"] if v == "ID" else v) for k, v in body.items()}
    assert post(gw, "/teams/update", body).status_code == 400
    assert teams(gw)[team["id"]] == team


def test_update_of_an_unknown_team_is_404_and_to_a_taken_name_is_409(gw: InProcessGateway) -> None:
    make_team(gw, "taken-team")
    team = make_team(gw, "renamed-team")
    assert post(gw, "/teams/update", {"teamId": team["id"], "name": "TAKEN-TEAM"}).status_code == 409
    resp = post(gw, "/teams/update", {"teamId": NO_TEAM, "budget": 1})
    assert resp.status_code == 404 and resp.json()["error"] == "Team not found"


def test_assign_and_remove_by_api_key_key_or_alias_with_usage_breakdown(gw: InProcessGateway) -> None:
    team = make_team(gw, "members-team", budget=100)
    first, second = gw.create_key(10), gw.create_key(10)
    assert post(gw, "/keys/alias", {"key": second, "alias": "team-member"}).status_code == 200
    resp = post(gw, "/teams/assign", {"teamId": team["id"], "apiKey": first})
    assert resp.status_code == 200 and resp.json()["keyMasked"] == masked(first)
    assert post(gw, "/teams/assign", {"teamId": team["id"], "key": "team-member"}).status_code == 200
    gw.call_tool("echo", {"text": "x"}, first)
    gw.call_tool("add", {"a": 1, "b": 2}, second)
    gw.call_tool("add", {"a": 1, "b": 2}, second)
    report = usage(gw, team["id"])
    assert report["memberCount"] == 2 and report["spent"] == 3 and report["budgetRemaining"] == 97
    assert report["usage"]["dailyCalls"] == 3 and report["totalCalls"] == 3
    spent = {m["keyMasked"]: m["totalSpent"] for m in report["members"]}
    assert spent == {masked(first): 1, masked(second): 2}
    assert first not in str(report) and second not in str(report)
    resp = post(gw, "/teams/remove", {"teamId": team["id"], "apiKey": "team-member"})
    assert resp.status_code == 200 and teams(gw)[team["id"]]["memberCount"] == 1
    assigned = [e["data"]["keyMasked"] for e in gw.events("team.key_assigned") if e["data"]["teamId"] == team["id"]]
    removed = [e["data"]["keyMasked"] for e in gw.events("team.key_removed") if e["data"]["teamId"] == team["id"]]
    assert assigned == [masked(first), masked(second)] and removed == [masked(second)]


def test_a_key_is_in_at_most_one_team_and_other_refusals_change_nothing(gw: InProcessGateway) -> None:
    team, other = make_team(gw, "refusing-team"), make_team(gw, "other-team")
    raw, revoked = gw.create_key(5), gw.create_key(5)
    assert post(gw, "/keys/revoke", {"key": revoked}).status_code == 200
    assert post(gw, "/teams/remove", {"apiKey": raw}).status_code == 409  # in no team
    assert post(gw, "/teams/assign", {"teamId": NO_TEAM, "apiKey": raw}).status_code == 404
    assert post(gw, "/teams/assign", {"teamId": team["id"], "apiKey": "pg_" + "0" * 48}).status_code == 404
    assert post(gw, "/teams/assign", {"teamId": team["id"], "apiKey": revoked}).status_code == 409
    assert post(gw, "/teams/assign", {"teamId": team["id"], "apiKey": raw}).status_code == 200
    assert post(gw, "/teams/assign", {"teamId": team["id"], "apiKey": raw}).status_code == 409
    resp = post(gw, "/teams/assign", {"teamId": other["id"], "apiKey": raw})
    assert resp.status_code == 409 and "remove it" in resp.json()["error"]
    assert post(gw, "/teams/remove", {"teamId": other["id"], "apiKey": raw}).status_code == 409
    for bad in (
        {"teamId": team["id"]},
        {"apiKey": raw},
        {"teamId": team["id"], "apiKey": raw, "key": raw},
        {"teamId": team["id"], "apiKey": 5},
    ):
        assert post(gw, "/teams/assign", bad).status_code == 400, bad
    listing = teams(gw)
    assert (listing[team["id"]]["memberCount"], listing[other["id"]]["memberCount"]) == (1, 0)


def test_a_team_has_at_most_100_keys(gw: InProcessGateway) -> None:
    team = make_team(gw, "full-team")
    for _ in range(100):
        assert post(gw, "/teams/assign", {"teamId": team["id"], "apiKey": gw.create_key(1)}).status_code == 200
    resp = post(gw, "/teams/assign", {"teamId": team["id"], "apiKey": gw.create_key(1)})
    assert resp.status_code == 409 and "100" in resp.json()["error"]
    assert teams(gw)[team["id"]]["memberCount"] == 100


def test_the_gate_refuses_calls_beyond_the_team_budget(gw: InProcessGateway) -> None:
    team = make_team(gw, "budgeted", budget=2)
    raw = gw.create_key(10)
    assert post(gw, "/teams/assign", {"teamId": team["id"], "key": raw}).status_code == 200
    assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, raw)
    assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, raw)
    assert denial(gw.call_tool("add", {"a": 1, "b": 1}, raw)) == "team_budget_exceeded"
    assert post(gw, "/teams/update", {"teamId": team["id"], "budget": 0}).status_code == 200
    assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, raw)


def test_delete_deactivates_the_team_releases_its_keys_and_keeps_its_usage_readable(gw: InProcessGateway) -> None:
    team = make_team(gw, "deleted-team", budget=1)
    raw = gw.create_key(10)
    assert post(gw, "/teams/assign", {"teamId": team["id"], "apiKey": raw}).status_code == 200
    resp = post(gw, "/teams/delete", {"teamId": team["id"]})
    assert resp.status_code == 200 and resp.json()["keysReleased"] == 1
    assert team["id"] not in teams(gw)
    assert teams(gw, include_inactive=True)[team["id"]]["active"] is False
    assert usage(gw, team["id"])["active"] is False
    assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, raw)  # its budget no longer applies
    assert post(gw, "/teams/remove", {"apiKey": raw}).status_code == 409
    assert post(gw, "/teams/delete", {"teamId": team["id"]}).status_code == 404
    assert post(gw, "/teams/assign", {"teamId": team["id"], "apiKey": raw}).status_code == 404
    assert post(gw, "/teams/delete", {}).status_code == 400
    [event] = [e for e in gw.events("team.deleted") if e["data"]["teamId"] == team["id"]]
    assert event["data"]["keysReleased"] == 1


def test_usage_of_an_unknown_team_is_404_and_without_team_id_400(gw: InProcessGateway) -> None:
    resp = gw.client.get("/teams/usage", params={"teamId": NO_TEAM}, headers=gw.admin())
    assert resp.status_code == 404
    assert gw.client.get("/teams/usage", headers=gw.admin()).status_code == 400


def test_teams_and_memberships_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        team = make_team(gw, "durable-team", budget=50, quota={"monthlyCalls": 7})
        gone = make_team(gw, "gone-team")
        raw = gw.create_key(5)
        assert post(gw, "/teams/assign", {"teamId": team["id"], "apiKey": raw}).status_code == 200
        assert post(gw, "/teams/delete", {"teamId": gone["id"]}).status_code == 200
        before = teams(gw, include_inactive=True)
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        assert teams(gw, include_inactive=True) == before and list(teams(gw)) == [team["id"]]
        assert usage(gw, team["id"])["memberCount"] == 1


def test_deleted_teams_kept_for_their_history_are_bounded_the_oldest_deleted_is_erased(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from paygate.compose import keys as compose_keys
    from paygate.policy import memberships

    assert memberships.TEAMS.deleted_kept == 1000  # the documented bound; the run below uses a smaller one
    bound = 40
    monkeypatch.setattr(compose_keys, "TEAMS", dataclasses.replace(memberships.TEAMS, deleted_kept=bound))
    with running_inprocess_gateway("--server", ECHO_COMMAND) as gw:
        deleted = []
        for i in range(bound + 1):
            team = make_team(gw, f"churn-{i}")
            assert post(gw, "/teams/delete", {"teamId": team["id"]}).status_code == 200
            deleted.append(team["id"])
        kept = teams(gw, include_inactive=True)
        assert len(kept) == bound and deleted[0] not in kept and deleted[-1] in kept
        assert gw.client.get("/teams/usage", params={"teamId": deleted[0]}, headers=gw.admin()).status_code == 404
        assert usage(gw, deleted[1])["active"] is False
