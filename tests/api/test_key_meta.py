"""POST /keys/alias, /keys/notes, POST /keys/tags and POST /keys/search against a real gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway, start_inprocess_gateway
from tests.support import ECHO_COMMAND, masked


def post(gw: InProcessGateway, path: str, body: dict[str, Any]) -> httpx.Response:
    return gw.client.post(path, headers=gw.admin(), json=body)


def view(gw: InProcessGateway, raw: str) -> dict[str, Any]:
    found = [k for k in gw.client.get("/keys", headers=gw.admin()).json() if k["keyMasked"] == masked(raw)]
    assert len(found) == 1, found
    return dict(found[0])


def notes(gw: InProcessGateway, key: str) -> httpx.Response:
    return gw.client.get("/keys/notes", params={"key": key}, headers=gw.admin())


# --- aliases --------------------------------------------------------------------------------------


def test_an_alias_names_the_key_in_every_admin_endpoint(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    resp = post(gw, "/keys/alias", {"key": raw, "alias": "billing-svc"})
    assert resp.status_code == 200
    assert resp.json() == {
        "key": masked(raw),
        "keyMasked": masked(raw),
        "alias": "billing-svc",
        "previousAlias": None,
        "message": 'Alias set to "billing-svc"',
    }
    assert view(gw, raw)["alias"] == "billing-svc"
    assert post(gw, "/topup", {"key": "billing-svc", "credits": 5}).json()["credits"] == 15
    assert post(gw, "/keys/notes", {"key": "billing-svc", "text": "n"}).status_code == 200
    assert notes(gw, "billing-svc").json()["count"] == 1
    gone = gw.client.delete("/keys/notes", params={"key": "billing-svc", "index": 0}, headers=gw.admin())
    assert gone.status_code == 200 and notes(gw, raw).json()["count"] == 0
    assert post(gw, "/keys/tags", {"key": "billing-svc", "tags": {"a": "b"}}).status_code == 200
    other = gw.create_key(0)
    assert post(gw, "/keys/transfer", {"from": "billing-svc", "to": other, "credits": 5}).status_code == 200
    assert post(gw, "/keys/clone", {"key": "billing-svc", "credits": 0}).status_code == 201
    assert post(gw, "/keys/revoke", {"key": "billing-svc"}).status_code == 200
    assert view(gw, raw)["active"] is False


def test_an_alias_does_not_authenticate_on_mcp(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    post(gw, "/keys/alias", {"key": raw, "alias": "not-a-credential"})
    reply = gw.call_tool("add", {"a": 1, "b": 1}, "not-a-credential")
    assert reply["error"]["data"]["reason"] == "invalid_api_key"
    assert gw.balance(raw) == 10


def test_an_alias_can_be_changed_and_cleared(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    post(gw, "/keys/alias", {"key": raw, "alias": "first-name"})
    changed = post(gw, "/keys/alias", {"key": "first-name", "alias": "second-name"}).json()
    assert changed["previousAlias"] == "first-name"
    assert post(gw, "/topup", {"key": "first-name", "credits": 1}).status_code == 404
    cleared = post(gw, "/keys/alias", {"key": "second-name", "alias": None})
    assert cleared.status_code == 200 and cleared.json()["message"] == "Alias cleared"
    assert view(gw, raw)["alias"] is None
    events = [e["data"] for e in gw.events("key.alias_set") if e["data"]["keyMasked"] == masked(raw)]
    assert [e["alias"] for e in events] == ["first-name", "second-name", None]
    assert raw not in gw.stderr()


def test_a_duplicate_alias_is_a_409_that_changes_nothing(gw: InProcessGateway) -> None:
    a, b = gw.create_key(1), gw.create_key(1)
    post(gw, "/keys/alias", {"key": a, "alias": "taken"})
    post(gw, "/keys/alias", {"key": b, "alias": "b-own"})
    resp = post(gw, "/keys/alias", {"key": b, "alias": "taken"})
    assert resp.status_code == 409 and "already used" in resp.json()["error"]
    assert view(gw, b)["alias"] == "b-own" and view(gw, a)["alias"] == "taken"


def test_a_revoked_keys_alias_stays_reserved(gw: InProcessGateway) -> None:
    a, b = gw.create_key(1), gw.create_key(1)
    post(gw, "/keys/alias", {"key": a, "alias": "retired-name"})
    post(gw, "/keys/revoke", {"key": a})
    resp = post(gw, "/keys/alias", {"key": b, "alias": "retired-name"})
    assert resp.status_code == 409 and "revoked" in resp.json()["error"]
    assert post(gw, "/keys/alias", {"key": a, "alias": "again"}).status_code == 409
    assert view(gw, b)["alias"] is None


def test_a_revoked_key_is_still_named_by_its_alias(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    post(gw, "/keys/alias", {"key": raw, "alias": "gone-svc"})
    assert post(gw, "/keys/revoke", {"key": "gone-svc"}).status_code == 200
    again = post(gw, "/keys/revoke", {"key": "gone-svc"})
    assert again.status_code == 409 and "already revoked" in again.json()["error"]
    assert post(gw, "/keys/notes", {"key": "gone-svc", "text": "why it was revoked"}).status_code == 200
    assert notes(gw, "gone-svc").json()["count"] == 1 and notes(gw, raw).json()["count"] == 1


def test_an_alias_may_not_collide_with_an_api_key(gw: InProcessGateway) -> None:
    a, b = gw.create_key(1), gw.create_key(1)
    resp = post(gw, "/keys/alias", {"key": a, "alias": b})
    assert resp.status_code == 400  # it starts with pg_
    assert view(gw, a)["alias"] is None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"key": "KEY", "alias": "has space"}, 400),
        ({"key": "KEY", "alias": ""}, 400),
        ({"key": "KEY", "alias": "x" * 101}, 400),
        ({"key": "KEY", "alias": "dot.ted"}, 400),
        ({"key": "KEY", "alias": "pg_lookalike"}, 400),
        ({"key": "KEY", "alias": 7}, 400),
        ({"key": "KEY"}, 400),
        ({"alias": "fine"}, 400),
        ({"key": "KEY", "alias": "fine", "more": 1}, 400),
        ({"key": "pg_unknown_unknown", "alias": "fine"}, 404),
        ({"key": "unknown-alias", "alias": "fine"}, 404),
    ],
)
def test_bad_alias_requests_change_nothing(gw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    raw = gw.create_key(1)
    body = {k: raw if v == "KEY" else v for k, v in body.items()}
    assert post(gw, "/keys/alias", body).status_code == status
    assert view(gw, raw)["alias"] is None
    assert post(gw, "/topup", {"key": "fine", "credits": 1}).status_code == 404


def test_the_longest_alias_is_accepted(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    alias = "A_b-9" * 20
    assert post(gw, "/keys/alias", {"key": raw, "alias": alias}).status_code == 200
    assert post(gw, "/topup", {"key": alias, "credits": 2}).json()["credits"] == 3


# --- notes ----------------------------------------------------------------------------------------


def test_notes_are_added_listed_and_deleted_by_index(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    first = post(gw, "/keys/notes", {"key": raw, "text": "first"})
    assert first.status_code == 200
    assert first.json()["note"]["author"] == "admin" and first.json()["note"]["timestamp"].endswith("Z")
    post(gw, "/keys/notes", {"key": raw, "text": "second"})
    listed = notes(gw, raw).json()
    assert listed["key"] == masked(raw) and listed["count"] == 2
    assert [n["text"] for n in listed["notes"]] == ["first", "second"]
    deleted = gw.client.delete("/keys/notes", params={"key": raw, "index": 0}, headers=gw.admin())
    assert deleted.status_code == 200 and deleted.json()["deleted"]["text"] == "first"
    assert [n["text"] for n in notes(gw, raw).json()["notes"]] == ["second"]
    added = [e for e in gw.events("key.note_added") if e["data"]["keyMasked"] == masked(raw)]
    removed = [e for e in gw.events("key.note_deleted") if e["data"]["keyMasked"] == masked(raw)]
    assert len(added) == 2 and removed[0]["data"]["index"] == 0
    assert "first" not in str(removed)  # note text stays out of events


def test_notes_work_on_revoked_keys(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    post(gw, "/keys/revoke", {"key": raw})
    assert post(gw, "/keys/notes", {"key": raw, "text": "revoked for abuse"}).status_code == 200
    assert notes(gw, raw).json()["count"] == 1


def test_a_key_holds_at_most_50_notes(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    for i in range(50):
        assert post(gw, "/keys/notes", {"key": raw, "text": f"n{i}"}).status_code == 200
    resp = post(gw, "/keys/notes", {"key": raw, "text": "one too many"})
    assert resp.status_code == 409 and "50" in resp.json()["error"]
    assert notes(gw, raw).json()["count"] == 50


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"key": "KEY", "text": ""}, 400),
        ({"key": "KEY", "text": "   "}, 400),
        ({"key": "KEY", "text": "x" * 1001}, 400),
        ({"key": "KEY", "text": 5}, 400),
        ({"key": "KEY"}, 400),
        ({"key": "pg_unknown_x", "text": "hi"}, 404),
    ],
)
def test_bad_notes_add_nothing(gw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    raw = gw.create_key(1)
    body = {k: raw if v == "KEY" else v for k, v in body.items()}
    assert post(gw, "/keys/notes", body).status_code == status
    assert notes(gw, raw).json()["count"] == 0


@pytest.mark.parametrize(("index", "status"), [("1", 404), ("-1", 400), ("x", 400), ("0.5", 400), (None, 400)])
def test_bad_note_deletions_delete_nothing(gw: InProcessGateway, index: str | None, status: int) -> None:
    raw = gw.create_key(1)
    post(gw, "/keys/notes", {"key": raw, "text": "keep me"})
    params = {"key": raw} if index is None else {"key": raw, "index": index}
    assert gw.client.delete("/keys/notes", params=params, headers=gw.admin()).status_code == status
    assert notes(gw, raw).json()["count"] == 1


def test_notes_of_an_unknown_key_are_a_404(gw: InProcessGateway) -> None:
    assert notes(gw, "pg_unknown_unknown").status_code == 404
    assert gw.client.delete("/keys/notes", params={"key": "nobody", "index": 0}, headers=gw.admin()).status_code == 404
    assert gw.client.get("/keys/notes", headers=gw.admin()).status_code == 400


# --- tags and search ------------------------------------------------------------------------------


def test_tags_merge_and_null_removes_a_tag(gw: InProcessGateway) -> None:
    raw = gw.create_key(1, tags={"team": "backend", "env": "dev"})
    resp = post(gw, "/keys/tags", {"key": raw, "tags": {"env": "prod", "customer": "cus_1"}})
    assert resp.status_code == 200
    assert resp.json()["tags"] == {"team": "backend", "env": "prod", "customer": "cus_1"}
    post(gw, "/keys/tags", {"key": raw, "tags": {"env": None, "absent": None}})
    assert view(gw, raw)["tags"] == {"team": "backend", "customer": "cus_1"}
    events = [e["data"] for e in gw.events("key.tags_updated") if e["data"]["keyMasked"] == masked(raw)]
    assert events[-1]["changes"] == {"env": None, "absent": None}


def test_a_key_holds_at_most_50_tags(gw: InProcessGateway) -> None:
    raw = gw.create_key(1, tags={f"t{i}": "v" for i in range(45)})
    resp = post(gw, "/keys/tags", {"key": raw, "tags": {f"n{i}": "v" for i in range(6)}})
    assert resp.status_code == 400 and "50" in resp.json()["error"]
    assert len(view(gw, raw)["tags"]) == 45
    swap = {**{f"t{i}": None for i in range(6)}, **{f"n{i}": "v" for i in range(6)}}
    assert post(gw, "/keys/tags", {"key": raw, "tags": swap}).status_code == 200
    assert len(view(gw, raw)["tags"]) == 45


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"key": "KEY", "tags": {}}, 400),
        ({"key": "KEY", "tags": {"k" * 101: "v"}}, 400),
        ({"key": "KEY", "tags": {"k": "v" * 101}}, 400),
        ({"key": "KEY", "tags": {"k": 1}}, 400),
        ({"key": "KEY", "tags": ["k"]}, 400),
        ({"key": "KEY"}, 400),
        ({"key": "pg_unknown_x", "tags": {"k": "v"}}, 404),
        ({"key": "REVOKED", "tags": {"k": "v"}}, 409),
    ],
)
def test_bad_tag_updates_change_nothing(gw: InProcessGateway, body: dict[str, Any], status: int) -> None:
    raw, revoked = gw.create_key(1, tags={"keep": "me"}), gw.create_key(1, tags={"keep": "me"})
    post(gw, "/keys/revoke", {"key": revoked})
    swap = {"KEY": raw, "REVOKED": revoked}
    body = {k: swap.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    assert post(gw, "/keys/tags", body).status_code == status
    assert view(gw, raw)["tags"] == {"keep": "me"} and view(gw, revoked)["tags"] == {"keep": "me"}


def test_search_finds_keys_having_every_tag_optionally_in_a_namespace(gw: InProcessGateway) -> None:
    a = gw.create_key(1, tags={"squad": "s-search", "env": "prod"}, namespace="ns-a")
    b = gw.create_key(1, tags={"squad": "s-search", "env": "dev"}, namespace="ns-b")
    c = gw.create_key(1, tags={"squad": "s-search", "env": "prod"}, namespace="ns-b")
    both = post(gw, "/keys/search", {"tags": {"squad": "s-search", "env": "prod"}}).json()
    assert both["count"] == 2 and {k["keyMasked"] for k in both["keys"]} == {masked(a), masked(c)}
    one = post(gw, "/keys/search", {"tags": {"squad": "s-search"}, "namespace": "ns-b"}).json()
    assert {k["keyMasked"] for k in one["keys"]} == {masked(b), masked(c)}
    assert a not in str(both) and "keyHash" not in str(both)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"tags": {}},
        {"tags": {"a": None}},
        {"tags": {"a": "b"}, "namespace": "x y"},
        {"tags": {"a": "b"}, "extra": 1},
    ],
)
def test_bad_searches_are_400s(gw: InProcessGateway, body: dict[str, Any]) -> None:
    assert post(gw, "/keys/search", body).status_code == 400


def test_a_viewer_may_search_and_read_notes_but_not_change_metadata(gw: InProcessGateway) -> None:
    created = post(gw, "/admin/keys", {"name": "meta-viewer", "role": "viewer"})
    assert created.status_code == 201, created.text
    viewer = {"X-Admin-Key": created.json()["key"]}
    raw = gw.create_key(1, tags={"seen": "by-viewer"})
    assert gw.client.post("/keys/search", headers=viewer, json={"tags": {"seen": "by-viewer"}}).json()["count"] == 1
    assert gw.client.get("/keys/notes", params={"key": raw}, headers=viewer).status_code == 200
    for path, body in [
        ("/keys/tags", {"key": raw, "tags": {"x": "y"}}),
        ("/keys/alias", {"key": raw, "alias": "v"}),
        ("/keys/notes", {"key": raw, "text": "t"}),
    ]:
        assert gw.client.post(path, headers=viewer, json=body).status_code == 403, path
    assert view(gw, raw)["tags"] == {"seen": "by-viewer"} and view(gw, raw)["alias"] is None


# --- persistence ----------------------------------------------------------------------------------


def test_aliases_notes_and_tags_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_inprocess_gateway(*args, state_file=state) as gw:
        raw = gw.create_key(4)
        post(gw, "/keys/alias", {"key": raw, "alias": "durable"})
        post(gw, "/keys/notes", {"key": "durable", "text": "remember me"})
        post(gw, "/keys/tags", {"key": "durable", "tags": {"tier": "gold"}})
    with running_inprocess_gateway(*args, state_file=state) as gw:
        assert post(gw, "/topup", {"key": "durable", "credits": 1}).json()["credits"] == 5
        assert [n["text"] for n in notes(gw, "durable").json()["notes"]] == ["remember me"]
        assert view(gw, raw)["tags"] == {"tier": "gold"}
        assert post(gw, "/keys/alias", {"key": gw.create_key(0), "alias": "durable"}).status_code == 409


def test_an_alias_may_not_equal_an_imported_key_of_another_format() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--import-key", "legacy_key_1234:5") as gw:
        raw = gw.create_key(1)
        resp = post(gw, "/keys/alias", {"key": raw, "alias": "legacy_key_1234"})
        assert resp.status_code == 409 and "collides" in resp.json()["error"]
        assert view(gw, raw)["alias"] is None


def refused_start(*args: str, **kwargs: Any) -> str:
    """The error of a gateway that must not start."""
    try:
        gateway = start_inprocess_gateway(*args, **kwargs)
    except RuntimeError as exc:
        return str(exc)
    gateway.stop()
    raise AssertionError("the gateway started")


def test_a_key_may_not_be_imported_under_another_keys_alias(tmp_path: Path) -> None:
    # Otherwise the imported key would shadow the alias: a topup "to legacy-svc" would credit it.
    state = str(tmp_path / "s.db")
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0")
    with running_inprocess_gateway(*args, state_file=state) as gw:
        raw = gw.create_key(1)
        post(gw, "/keys/alias", {"key": raw, "alias": "legacy-svc"})
    error = refused_start(*args, "--import-key", "legacy-svc:100", state_file=state)
    assert f"legacy-…-svc is the alias of key {masked(raw)}" in error
    with running_inprocess_gateway(*args, state_file=state) as gw:
        assert post(gw, "/topup", {"key": "legacy-svc", "credits": 1}).json()["keyMasked"] == masked(raw)
        assert len(gw.client.get("/keys", headers=gw.admin()).json()) == 1


def test_an_imported_balance_above_the_credit_cap_is_refused_clearly() -> None:
    error = refused_start("--server", ECHO_COMMAND, "--import-key", f"big_legacy_key:{10**15 + 1}")
    assert "at most 10" in error
