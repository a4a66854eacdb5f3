"""Admin keys with roles (/admin/keys): creation, listing, revocation, and roles enforced on every admin route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config

ROLES = ("viewer", "admin", "super_admin")
RANK = {name: i for i, name in enumerate(ROLES)}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    """The walks below send every admin route a request without a key: far more failed authentications
    than `authFailureLimit` allows one address by default (tests/security/test_admin_auth_flood.py)."""
    config = write_config(tmp_path_factory.mktemp("roles"), {"authFailureLimit": 100_000})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gateway:
        yield gateway


def make_admin_key(gw: InProcessGateway, role: str, name: str | None = None) -> dict[str, Any]:
    resp = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": name or f"{role} bot", "role": role})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def as_key(raw: str) -> dict[str, str]:
    return {"X-Admin-Key": raw}


def listing(gw: InProcessGateway, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    resp = gw.client.get("/admin/keys", headers=headers or gw.admin())
    assert resp.status_code == 200, resp.text
    return list(resp.json()["keys"])


@pytest.mark.parametrize("role", ROLES)
def test_whoami_tells_each_admin_key_its_own_role_and_never_the_key(gw: InProcessGateway, role: str) -> None:
    created = make_admin_key(gw, role, f"who {role}")
    resp = gw.client.get("/admin/whoami", headers=as_key(created["key"]))
    assert resp.status_code == 200, resp.text
    me = resp.json()  # (before the rotation test below replaces the bootstrap key this module shares)
    assert (me["name"], me["role"], me["bootstrap"]) == (f"who {role}", role, False)
    assert me["canChange"] is (role != "viewer") and me["canManageAdminKeys"] is (role == "super_admin")
    assert me["keyMasked"] == created["keyMasked"] and created["key"] not in resp.text
    assert gw.client.get("/admin/whoami").status_code == 401
    bootstrap = gw.client.get("/admin/whoami", headers=gw.admin()).json()
    assert bootstrap["bootstrap"] is True and bootstrap["role"] == "super_admin"


def test_a_new_admin_key_is_shown_once_and_listed_masked_with_its_role(gw: InProcessGateway) -> None:
    created = make_admin_key(gw, "viewer", "dashboards")
    raw = created["key"]
    assert raw.startswith("ak_") and created["role"] == "viewer" and created["name"] == "dashboards"
    assert created["keyMasked"] == f"{raw[:7]}…{raw[-4:]}"
    resp = gw.client.get("/admin/keys", headers=gw.admin())
    assert raw not in resp.text and gw.admin_key not in resp.text
    mine = [k for k in resp.json()["keys"] if k["keyMasked"] == created["keyMasked"]]
    assert mine == [
        {
            **{k: created[k] for k in ("name", "role", "keyMasked", "createdAt", "createdBy")},
            "active": True,
            "bootstrap": False,
            "lastUsedAt": None,
            "revokedAt": None,
        }
    ]
    assert resp.json()["keys"][0]["bootstrap"] is True
    events = [e for e in gw.events("admin_key.created") if e["data"]["keyMasked"] == created["keyMasked"]]
    assert events and events[0]["data"]["role"] == "viewer" and raw not in str(gw.events())


def test_the_role_defaults_to_admin(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/keys", headers=gw.admin(), json={"name": "ci"})
    assert resp.status_code == 201 and resp.json()["role"] == "admin"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": "ok", "role": "root"},
        {"name": "ok", "role": 1},
        {"name": 5},
        {"name": "ok", "extra": True},
    ],
)
def test_bad_admin_key_requests_are_400_and_create_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = len(listing(gw))
    resp = gw.client.post("/admin/keys", headers=gw.admin(), json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert len(listing(gw)) == before


def test_a_created_key_authenticates_with_its_role(gw: InProcessGateway) -> None:
    viewer = make_admin_key(gw, "viewer")["key"]
    assert gw.client.get("/keys", headers=as_key(viewer)).status_code == 200
    keys_before = len(gw.client.get("/keys", headers=gw.admin()).json())
    refused = gw.client.post("/keys", headers=as_key(viewer), json={"name": "nope", "credits": 5})
    assert refused.status_code == 403 and "admin role" in refused.json()["error"]
    assert len(gw.client.get("/keys", headers=gw.admin()).json()) == keys_before
    assert any(e["data"]["path"] == "/keys" and e["data"]["role"] == "viewer" for e in gw.events("admin.forbidden"))


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_only_super_admins_manage_admin_keys(gw: InProcessGateway, role: str) -> None:
    raw = make_admin_key(gw, role)["key"]
    victim = make_admin_key(gw, "viewer")
    before = len(listing(gw))
    assert gw.client.get("/admin/keys", headers=as_key(raw)).status_code == 403
    assert gw.client.post("/admin/keys", headers=as_key(raw), json={"name": "x"}).status_code == 403
    assert gw.client.post("/admin/keys/revoke", headers=as_key(raw), json={"key": victim["key"]}).status_code == 403
    assert len(listing(gw)) == before
    assert gw.client.get("/keys", headers=as_key(victim["key"])).status_code == 200


def test_a_super_admin_key_can_manage_admin_keys(gw: InProcessGateway) -> None:
    boss = make_admin_key(gw, "super_admin")["key"]
    made = gw.client.post("/admin/keys", headers=as_key(boss), json={"name": "made by boss", "role": "viewer"})
    assert made.status_code == 201
    assert made.json()["createdBy"].startswith("admin:super_admin bot")
    revoked = gw.client.post("/admin/keys/revoke", headers=as_key(boss), json={"key": made.json()["key"]})
    assert revoked.status_code == 200


@pytest.mark.parametrize("by", ["raw", "masked"])
def test_a_revoked_admin_key_gets_401(gw: InProcessGateway, by: str) -> None:
    created = make_admin_key(gw, "admin")
    raw = created["key"]
    assert gw.client.get("/keys", headers=as_key(raw)).status_code == 200
    ref = raw if by == "raw" else created["keyMasked"]
    resp = gw.client.post("/admin/keys/revoke", headers=gw.admin(), json={"key": ref})
    assert resp.status_code == 200, resp.text
    assert resp.json()["revoked"] is True and resp.json()["active"] is False and raw not in resp.text
    assert gw.client.get("/keys", headers=as_key(raw)).status_code == 401
    entry = next(k for k in listing(gw) if k["keyMasked"] == created["keyMasked"])
    assert entry["active"] is False and entry["revokedAt"]
    assert any(e["data"]["keyMasked"] == created["keyMasked"] for e in gw.events("admin_key.revoked"))
    again = gw.client.post("/admin/keys/revoke", headers=gw.admin(), json={"key": raw})
    assert again.status_code == 409


def test_you_cannot_revoke_your_own_admin_key(gw: InProcessGateway) -> None:
    boss = make_admin_key(gw, "super_admin")["key"]
    resp = gw.client.post("/admin/keys/revoke", headers=as_key(boss), json={"key": boss})
    assert resp.status_code == 400 and "you are using" in resp.json()["error"]
    assert gw.client.get("/admin/keys", headers=as_key(boss)).status_code == 200


@pytest.mark.parametrize("ref", ["BOOTSTRAP_RAW", "bootstrap"])
def test_the_bootstrap_key_cannot_be_revoked(gw: InProcessGateway, ref: str) -> None:
    boss = make_admin_key(gw, "super_admin")["key"]
    key = gw.admin_key if ref == "BOOTSTRAP_RAW" else ref
    resp = gw.client.post("/admin/keys/revoke", headers=as_key(boss), json={"key": key})
    assert resp.status_code == 400 and "bootstrap" in resp.json()["error"]
    assert gw.client.get("/admin/keys", headers=gw.admin()).status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"key": "ak_doesnotexist000000000000"}, 404),
        ({"key": "ak_zzzz…zzzz"}, 404),
        ({}, 400),
        ({"key": ""}, 400),
        ({"key": 7}, 400),
    ],
)
def test_revoking_an_unknown_or_malformed_admin_key_changes_nothing(
    gw: InProcessGateway, body: dict[str, Any], status: int
) -> None:
    before = listing(gw)
    resp = gw.client.post("/admin/keys/revoke", headers=gw.admin(), json=body)
    assert resp.status_code == status, resp.text
    assert [k["active"] for k in listing(gw)] == [k["active"] for k in before]


def admin_routes(gw: InProcessGateway) -> list[tuple[str, str, str]]:
    """(METHOD, concrete path, required role) for every route behind the admin check, as the app declares it."""
    spec = gw.client.get("/openapi.json").json()
    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in HTTP_METHODS:
                continue
            concrete = "/".join("x" if part.startswith("{") else part for part in path.split("/"))
            with gw.client.stream(method.upper(), concrete, json={} if method != "get" else None) as resp:
                is_admin = resp.status_code == 401 and "admin key" in resp.read().decode().lower()
            if not is_admin:
                continue
            default = "viewer" if method == "get" else "admin"
            out.append((method.upper(), concrete, op.get("x-required-role", default)))
    return out


def status_as(gw: InProcessGateway, method: str, path: str, raw: str) -> int:
    with gw.client.stream(
        method, path, headers=as_key(raw), json={} if method != "GET" else None, timeout=httpx.Timeout(30.0)
    ) as resp:
        return resp.status_code


# The only non-GET admin routes a viewer may call: they read and change nothing. A new one belongs here
# only after checking that: anything that writes must need at least `admin`.
READ_ONLY_POSTS = {("POST", "/keys/search"), ("POST", "/requests/dry-run"), ("POST", "/requests/dry-run/batch")}


def test_only_read_only_posts_are_open_to_viewers(gw: InProcessGateway) -> None:
    viewer_writes = {
        (method, path) for method, path, needed in admin_routes(gw) if method != "GET" and needed == "viewer"
    }
    assert viewer_writes == READ_ONLY_POSTS


def test_every_admin_route_enforces_its_declared_role(gw: InProcessGateway) -> None:
    """Walks the running app's OpenAPI: each identity gets 403 exactly where its role is below the declaration."""
    routes = admin_routes(gw)
    declared = {role for _, _, role in routes}
    assert {"viewer", "admin", "super_admin"} <= declared, declared
    assert ("GET", "/admin/keys", "super_admin") in routes and ("POST", "/admin/plans", "admin") in routes
    assert len(routes) >= 20, routes
    identities = {role: make_admin_key(gw, role, f"walker {role}")["key"] for role in ROLES}
    wrong = []
    for role in ROLES:  # least powerful first: a permitted write by a lower role never lacks a higher one's rights
        for method, path, needed in routes:
            status = status_as(gw, method, path, identities[role])
            allowed = RANK[role] >= RANK[needed]
            if (status == 403) == allowed or status == 401:
                wrong.append(f"{role} {method} {path} (needs {needed}): {status}")
    assert not wrong, "\n".join(wrong)
    forbidden = gw.events("admin.forbidden")
    assert any(e["data"]["role"] == "viewer" and e["data"]["required"] == "admin" for e in forbidden)


def test_admin_keys_and_revocations_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    bootstrap = "admin_restart_test_key_0123456789"
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--admin-key", bootstrap, state_file=state) as gw:
        gw.admin_key_override = bootstrap
        kept = make_admin_key(gw, "viewer", "kept")
        gone = make_admin_key(gw, "admin", "gone")
        assert gw.client.post("/admin/keys/revoke", headers=gw.admin(), json={"key": gone["key"]}).status_code == 200
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--admin-key", bootstrap, state_file=state) as gw:
        gw.admin_key_override = bootstrap
        assert gw.client.get("/keys", headers=as_key(kept["key"])).status_code == 200
        assert gw.client.post("/keys", headers=as_key(kept["key"]), json={"name": "n"}).status_code == 403
        assert gw.client.get("/keys", headers=as_key(gone["key"])).status_code == 401
        names = {k["name"]: k["active"] for k in listing(gw)}
        assert names["kept"] is True and names["gone"] is False


def test_a_generated_admin_key_file_is_private_even_if_the_file_was_there_before(tmp_path: Path) -> None:
    stale = tmp_path / "admin.key"
    stale.write_text("a key from a deleted state file\n")
    stale.chmod(0o644)
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=str(tmp_path / "s.db")) as gw:
        assert stale.read_text().strip() == gw.admin_key
        assert stale.stat().st_mode & 0o777 == 0o600
