"""Issue 11 item 13: a restore with a malformed group or team document was accepted, and afterwards
tool calls, /balance, /groups, /teams and /keys/dashboard answered 500. Every document of every kind
is now checked against the request model of the route that writes it (and that service's own checks)
before anything is written; a kind nothing reads is refused; and the listings leave out (and log) a
malformed stored document instead of answering 500."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.api.backup_support import backup, comparable, digest, make_plan, restore, sha
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    # webhooks to loopback port 9: a delivery attempt is refused at once, nothing leaves the machine
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--webhook-allow-private") as gateway:
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

    original = gw.call_in_loop(store.doc_get, kind, doc_id)
    assert original is not None
    gw.call_in_loop(lambda: store.doc_put(kind, doc_id, {**original, **bad}))
    try:
        resp = gw.rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, key=raw)
        assert resp.status_code == 200, resp.text
        reply = resp.json()
        assert "error" in reply, reply  # refused, not run without the document's limits
        assert reply["error"]["code"] != -32603, reply  # a denial, not an internal error
        assert gw.client.get("/balance", headers={"X-API-Key": raw}).status_code == 200
    finally:  # later tests back the gateway up: a malformed document would (rightly) stop their restores
        gw.call_in_loop(lambda: store.doc_put(kind, doc_id, original))


# --- every kind ------------------------------------------------------------------------------------

HOOK_URL = "http://127.0.0.1:9/hook"
KINDS = (
    "admin_key",
    "alerts",
    "group",
    "key_template",
    "key_webhook",
    "plan",
    "reservation",
    "schedule",
    "team",
    "webhook_filter",
)


def every_kind(gw: InProcessGateway) -> tuple[str, dict[str, str]]:
    """A key and one valid document of every kind the gateway stores, made through the API: (key, kind -> id)."""
    raw, group_id, team_id = with_docs(gw)
    tag = uuid.uuid4().hex[:8]
    ids = {"group": group_id, "team": team_id, "plan": make_plan(gw, rateLimitPerMin=100), "alerts": "rules"}

    def post(path: str, body: dict[str, Any]) -> Any:
        resp = gw.client.post(path, headers=gw.admin(), json=body)
        assert resp.is_success, (path, resp.text)
        return resp.json()

    post("/admin/keys", {"name": f"ops-{tag}", "role": "viewer"})
    ids["admin_key"] = next(h for h, d in doc_items(gw, "admin_key") if d["name"] == f"ops-{tag}")
    ids["key_template"] = post("/keys/templates", {"name": f"tpl-{tag}", "credits": 5, "tags": {"a": "b"}})["template"][
        "name"
    ]
    ids["webhook_filter"] = post(
        "/webhooks/filters", {"name": f"f-{tag}", "events": ["key.created"], "url": HOOK_URL, "keyPrefixes": ["pg_"]}
    )["id"]
    post("/keys/webhook", {"key": raw, "url": HOOK_URL, "secret": "s3cret"})
    ids["key_webhook"] = sha(raw)
    post("/alerts", {"rules": [{"type": "credits_low", "threshold": 5}, {"type": "quota_warning", "threshold": 80}]})
    ids["reservation"] = post("/keys/reserve", {"key": raw, "credits": 5, "memo": "job"})["id"]
    ids["schedule"] = post(
        "/keys/schedule", {"key": raw, "action": "topup", "delaySeconds": 3600, "params": {"credits": 7}}
    )["id"]
    return raw, ids


def doc_items(gw: InProcessGateway, kind: str) -> list[tuple[str, dict[str, Any]]]:
    assert gw.rt is not None
    store = gw.rt.store
    return list(gw.call_in_loop(lambda: store.doc_items(kind)))


def test_a_backup_of_every_kind_restores_cleanly(gw: InProcessGateway) -> None:
    every_kind(gw)
    snapshot = backup(gw)
    assert set(KINDS) <= set(snapshot["data"]["documents"]), sorted(snapshot["data"]["documents"])
    for mode in ("overwrite", "full"):
        resp = restore(gw, snapshot, mode)
        assert resp.status_code == 200, resp.text
        assert comparable(backup(gw)) == comparable(snapshot), mode


def _set(field: str, value: Any) -> Edit:
    return lambda d: d.update({field: value})


def _drop(field: str) -> Edit:
    return lambda d: d.pop(field)


BAD_ANY: list[tuple[str, str, Edit]] = [
    ("plan", "creditMultiplier", _set("creditMultiplier", "abc")),
    ("admin_key", "role", _set("role", "god")),
    ("key_template", "credits", _set("credits", -1)),
    ("key_template", "allowedTools", _set("allowedTools", "echo")),
    ("key_template", "createdAt", _set("createdAt", "yesterday")),
    ("key_template", "name", _set("name", "other")),
    ("key_template", "bogus", _set("bogus", 1)),
    ("webhook_filter", "events", _set("events", [])),
    ("webhook_filter", "url", _set("url", "ftp://example.com/")),
    ("webhook_filter", "keyPrefixes", _set("keyPrefixes", ["x" * 8])),
    ("webhook_filter", "active", _set("active", "yes")),
    ("webhook_filter", "id", _set("id", "wf_other")),
    ("key_webhook", "url", _set("url", None)),
    ("key_webhook", "secret", _set("secret", 5)),
    ("key_webhook", "updatedAt", _drop("updatedAt")),
    ("alerts", "rules", _set("rules", "all")),
    ("alerts", "threshold", lambda d: d["rules"][0].update(threshold="low")),
    ("alerts", "quota_warning", lambda d: d["rules"][1].update(threshold=500)),
    ("reservation", "credits", _set("credits", "5")),
    ("reservation", "status", _set("status", "pending")),
    ("reservation", "keyHash", _set("keyHash", "nothex")),
    ("reservation", "expiresAt", _drop("expiresAt")),
    ("reservation", "memo", _set("memo", ["x"])),
    ("schedule", "action", _set("action", "delete")),
    ("schedule", "params", lambda d: d.update(params={"credits": 0})),
    ("schedule", "executeAt", _set("executeAt", None)),
    ("schedule", "keyMasked", _drop("keyMasked")),
]


@pytest.mark.parametrize(("kind", "field", "edit"), BAD_ANY, ids=[f"{k}-{f}" for k, f, _ in BAD_ANY])
def test_a_malformed_document_of_any_kind_is_a_400_naming_it_that_changes_nothing(
    gw: InProcessGateway, kind: str, field: str, edit: Edit
) -> None:
    _, ids = every_kind(gw)
    tampered = backup(gw)
    edit(tampered["data"]["documents"][kind][ids[kind]])
    tampered["checksum"] = digest(tampered["data"])
    before = comparable(backup(gw))
    for mode in ("merge", "overwrite", "full"):
        resp = restore(gw, tampered, mode)
        assert resp.status_code == 400, resp.text
        message = resp.json()["error"]
        assert repr(kind) in message and ids[kind] in message and field in message, message
    assert comparable(backup(gw)) == before


def test_a_document_kind_this_gateway_does_not_store_is_refused(gw: InProcessGateway) -> None:
    tampered = backup(gw)
    tampered["data"]["documents"]["mystery"] = {"m1": {"anything": True}}
    tampered["checksum"] = digest(tampered["data"])
    before = comparable(backup(gw))
    resp = restore(gw, tampered, "merge")
    assert resp.status_code == 400, resp.text
    assert "mystery" in resp.json()["error"] and "unknown document kind" in resp.json()["error"]
    assert comparable(backup(gw)) == before


# --- the listings survive a malformed stored document ----------------------------------------------

DROP = object()  # the field is removed
SPOILED: list[tuple[str, dict[str, Any], str]] = [
    ("group", {"id": DROP}, "/groups"),
    ("group", {"id": None}, "/groups"),
    ("group", {"createdAt": {"x": 1}, "allowedTools": 5}, "/keys/dashboard"),
    ("team", {"id": DROP}, "/teams"),
    ("key_template", {"createdAt": "yesterday"}, "/keys/templates"),
    ("plan", {"name": None, "quota": 5}, "/admin/plans"),
    ("admin_key", {"createdTs": "x", "name": None}, "/admin/keys"),
    ("webhook_filter", {"events": 5}, "/webhooks/filters"),
    ("alerts", {"rules": 5}, "/alerts/rules"),
    ("reservation", {"createdAt": "x", "expiresAt": None}, "/keys/reserve"),
    ("schedule", {"executeAt": "x", "keyMasked": None}, "/keys/schedule"),
]


@pytest.mark.parametrize(("kind", "bad", "path"), SPOILED, ids=[f"{k}-{p}-{i}" for i, (k, _, p) in enumerate(SPOILED)])
def test_a_malformed_stored_document_never_makes_a_listing_500(
    gw: InProcessGateway, kind: str, bad: dict[str, Any], path: str
) -> None:
    """Defence in depth: a document that reached the store malformed anyway (an edited state file)."""
    raw, ids = every_kind(gw)
    assert gw.rt is not None
    store = gw.rt.store
    original = dict(doc_items(gw, kind))[ids[kind]]
    spoiled = {k: v for k, v in {**original, **bad}.items() if v is not DROP}
    gw.call_in_loop(lambda: store.doc_put(kind, ids[kind], spoiled))
    try:
        params = {"key": raw} if path == "/keys/dashboard" else {}
        resp = gw.client.get(path, headers=gw.admin(), params=params)
        assert resp.status_code == 200, (path, resp.text)
        for other in ("/groups", "/teams", "/keys/templates", "/admin/plans", "/keys/reserve", "/keys/schedule"):
            assert gw.client.get(other, headers=gw.admin()).status_code == 200, other
    finally:
        gw.call_in_loop(lambda: store.doc_put(kind, ids[kind], original))
