"""Issue 11 item 13: a restore with a malformed group or team document was accepted, and afterwards
tool calls, /balance, /groups, /teams and /keys/dashboard answered 500. Every group and team document
is now checked against the request models /groups and /teams use, before anything is written."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.api.backup_support import backup, comparable, digest, restore
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gateway:
        yield gateway


def with_docs(gw: InProcessGateway) -> tuple[str, str, str]:
    raw = gw.create_key(50, name="member")
    tag = uuid.uuid4().hex[:8]
    group = gw.client.post("/groups", headers=gw.admin(), json={"name": f"g-{tag}", "allowedTools": ["echo"]}).json()
    team = gw.client.post("/teams", headers=gw.admin(), json={"name": f"t-{tag}", "budget": 100}).json()
    assert gw.client.post("/groups/assign", headers=gw.admin(), json={"groupId": group["id"], "key": raw}).is_success
    assert gw.client.post("/teams/assign", headers=gw.admin(), json={"teamId": team["id"], "key": raw}).is_success
    return raw, group["id"], team["id"]


Edit = Callable[[dict[str, Any]], None]
BAD: list[tuple[str, str, Edit]] = [
    ("group", "allowedTools", lambda d: d.update(allowedTools="echo")),
    ("group", "toolPricing", lambda d: d.update(toolPricing={"echo": 5})),
    ("group", "rateLimitPerMin", lambda d: d.update(rateLimitPerMin="fast")),
    ("group", "quota", lambda d: d.update(quota=[1, 2])),
    ("group", "name", lambda d: d.update(name=None)),
    ("group", "id", lambda d: d.update(id="grp_other")),
    ("team", "budget", lambda d: d.update(budget="lots")),
    ("team", "quota", lambda d: d.update(quota={"dailyCalls": -1})),
    ("team", "active", lambda d: d.update(active="yes")),
    ("team", "tags", lambda d: d.update(tags=["x"])),
]


@pytest.mark.parametrize(("kind", "field", "edit"), BAD, ids=[f"{k}-{f}" for k, f, _ in BAD])
def test_a_malformed_group_or_team_document_is_a_400_naming_it_that_changes_nothing(
    gw: InProcessGateway, kind: str, field: str, edit: Edit
) -> None:
    raw, group_id, team_id = with_docs(gw)
    snapshot = backup(gw)
    doc_id = group_id if kind == "group" else team_id
    tampered = copy.deepcopy(snapshot)
    edit(tampered["data"]["documents"][kind][doc_id])
    tampered["checksum"] = digest(tampered["data"])
    before = comparable(backup(gw))
    resp = restore(gw, tampered, "overwrite")
    assert resp.status_code == 400, resp.text
    message = resp.json()["error"]
    assert kind in message and doc_id in message and field in message, message
    assert comparable(backup(gw)) == before
    for path in ("/groups", "/teams", "/keys/dashboard"):
        assert gw.client.get(path, headers=gw.admin()).status_code != 500, path
    assert gw.client.get("/balance", headers={"X-API-Key": raw}).status_code == 200
    assert "result" in gw.call_tool("echo", {"text": "hi"}, raw)


def test_a_well_formed_backup_with_groups_and_teams_still_restores(gw: InProcessGateway) -> None:
    with_docs(gw)
    snapshot = backup(gw)
    resp = restore(gw, snapshot, "overwrite")
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        ("group", {"rateLimitPerMin": "fast"}),
        ("group", {"quota": {"dailyCallLimit": "many"}}),
        ("group", {"toolPricing": {"echo": {"creditsPerCall": "x"}}}),
        ("group", {"maxSpendingLimit": "lots"}),
        ("team", {"budget": "lots"}),
        ("team", {"quota": {"dailyCalls": "many"}}),
    ],
)
def test_a_malformed_stored_document_denies_the_call_cleanly_and_never_500s(
    gw: InProcessGateway, kind: str, bad: dict[str, Any]
) -> None:
    """Defence in depth: a document that reached the store malformed anyway (an edited state file)."""
    raw, group_id, team_id = with_docs(gw)
    doc_id = group_id if kind == "group" else team_id
    assert gw.rt is not None
    store = gw.rt.store

    def spoil() -> None:
        doc = store.doc_get(kind, doc_id)
        assert doc is not None
        store.doc_put(kind, doc_id, {**doc, **bad})

    gw.call_in_loop(spoil)
    resp = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, key=raw)
    assert resp.status_code == 200, resp.text
    reply = resp.json()
    assert "error" in reply, reply  # refused, not run without the document's limits
    assert reply["error"]["code"] != -32603, reply  # a denial, not an internal error
    assert gw.client.get("/balance", headers={"X-API-Key": raw}).status_code == 200
