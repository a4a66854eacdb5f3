"""Per-key policy endpoints: /keys/acl, /keys/expiry, /keys/suspend, /keys/resume, /limits, /keys/quota,
/keys/ip, /keys/geo — what holds for all of them: 404/409, aliases, persistence and roles. Each policy's
own behaviour is in test_policy_access.py and test_policy_limits.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.policy_support import geo, post, set_alias, view
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked

# One valid request per endpoint (the key is filled in), for the cross-cutting tests.
VALID: dict[str, dict[str, Any]] = {
    "/keys/acl": {"allowedTools": ["echo"]},
    "/keys/expiry": {"expiresIn": 3600},
    "/keys/suspend": {"reason": "checking"},
    "/limits": {"spendingLimit": 10},
    "/keys/quota": {"dailyCallLimit": 5},
    "/keys/ip": {"ips": ["10.0.0.1"]},
    "/keys/geo": {"allowedCountries": ["US"]},
}


# --- cross-cutting: unknown keys, aliases, revoked keys -------------------------------------------


@pytest.mark.parametrize("path", [*VALID, "/keys/resume"])
def test_policy_endpoints_answer_404_for_an_unknown_key(gw: InProcessGateway, path: str) -> None:
    resp = post(gw, path, {"key": "pg_" + "0" * 48, **VALID.get(path, {})})
    assert resp.status_code == 404 and resp.json()["error"] == "API key not found"


def test_geo_reads_and_clears_answer_404_for_an_unknown_key(gw: InProcessGateway) -> None:
    for method in ("GET", "DELETE"):
        resp = gw.client.request(method, "/keys/geo", params={"key": "no-such-key"}, headers=gw.admin())
        assert resp.status_code == 404, method


@pytest.mark.parametrize("path", list(VALID))
def test_policy_endpoints_accept_a_key_alias(gw: InProcessGateway, path: str) -> None:
    raw = gw.create_key(10)
    alias = "policy-" + path.strip("/").replace("/", "-")
    set_alias(gw, raw, alias)
    resp = post(gw, path, {"key": alias, **VALID[path]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["keyMasked"] == masked(raw)


def test_suspend_resume_and_geo_reads_accept_an_alias(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    set_alias(gw, raw, "policy-sr")
    assert post(gw, "/keys/suspend", {"key": "policy-sr"}).status_code == 200
    assert post(gw, "/keys/resume", {"key": "policy-sr"}).status_code == 200
    assert geo(gw, "policy-sr")["keyMasked"] == masked(raw)
    resp = gw.client.delete("/keys/geo", params={"key": "policy-sr"}, headers=gw.admin())
    assert resp.status_code == 200 and resp.json()["keyMasked"] == masked(raw)


@pytest.mark.parametrize("path", list(VALID))
def test_policy_endpoints_refuse_a_revoked_key_with_409(gw: InProcessGateway, path: str) -> None:
    raw = gw.create_key(10)
    assert post(gw, "/keys/revoke", {"key": raw}).status_code == 200
    before = view(gw, raw)
    resp = post(gw, path, {"key": raw, **VALID[path]})
    assert resp.status_code == 409, resp.text
    assert view(gw, raw) == before


# --- persistence ------------------------------------------------------------------------------------


def test_every_policy_setting_survives_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        raw = gw.create_key(10)
        settings: list[tuple[str, dict[str, Any]]] = [
            ("/keys/acl", {"allowedTools": ["echo"], "deniedTools": ["fail"]}),
            ("/keys/expiry", {"expiresIn": 3600}),
            ("/keys/suspend", {"reason": "r"}),
            ("/limits", {"spendingLimit": 9}),
            ("/keys/quota", {"monthlyCallLimit": 8}),
            ("/keys/ip", {"ips": ["10.1.0.0/16"]}),
            ("/keys/geo", {"allowedCountries": ["de"], "deniedCountries": ["fr"]}),
        ]
        for path, body in settings:
            assert post(gw, path, {"key": raw, **body}).status_code == 200, path
        before = view(gw, raw)
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
        after = view(gw, raw)
        assert after == before
        assert after["allowedTools"] == ["echo"] and after["suspended"] is True and after["expiresAt"]
        assert after["spendingLimit"] == 9 and after["quota"]["monthlyCallLimit"] == 8
        assert after["ipAllowlist"] == ["10.1.0.0/16"]
        assert (geo(gw, raw)["allowedCountries"], geo(gw, raw)["deniedCountries"]) == (["DE"], ["FR"])


# --- roles ------------------------------------------------------------------------------------------


def test_a_viewer_admin_key_reads_policy_views_but_cannot_change_policy(gw: InProcessGateway) -> None:
    resp = post(gw, "/admin/keys", {"name": "policy-viewer", "role": "viewer"})
    assert resp.status_code == 201, resp.text
    viewer = {"X-Admin-Key": resp.json()["key"]}
    raw = gw.create_key(10)
    for path in ("/keys/geo?key=" + raw, "/groups", "/teams", "/namespaces", "/status?namespace=default"):
        assert gw.client.get(path, headers=viewer).status_code == 200, path
    assert gw.client.delete("/keys/geo", params={"key": raw}, headers=viewer).status_code == 403
    writes = [(path, {"key": raw, **body}) for path, body in VALID.items()]
    writes += [("/groups", {"name": "viewer-group"}), ("/teams", {"name": "viewer-team"})]
    for path, body in writes:
        assert gw.client.post(path, json=body, headers=viewer).status_code == 403, path
    assert view(gw, raw)["allowedTools"] == [] and view(gw, raw)["suspended"] is False
