"""Config profiles (docs/profiles.md): save, activate as a config reload would (the next call pays the
profile's price), rollback, inheritance and cycles, diff, import modes, masked secrets, roles, refusals
that change nothing, and the active profile applied again after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.api.reload_support import charged_by, reload_ok, reloadable_gateway
from tests.inprocess import InProcessGateway

PATH = "/admin/config-profiles"
SECRET = "whsec-profile-secret-value-1234567890"


def post(gw: InProcessGateway, **body: Any) -> httpx.Response:
    return gw.client.post(PATH, json=body, headers=gw.admin())


def ok(gw: InProcessGateway, **body: Any) -> dict[str, Any]:
    resp = post(gw, **body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def get(gw: InProcessGateway, **params: Any) -> dict[str, Any]:
    resp = gw.client.get(PATH, params=params, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def save(gw: InProcessGateway, name: str, settings: dict[str, Any], extends: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"action": "save", "name": name, "settings": settings}
    if extends:
        body["extends"] = extends
    return ok(gw, **body)


def test_activate_charges_the_profiles_price_and_rollback_restores_it(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {"defaultCreditsPerCall": 2}) as (gw, _):
        key = gw.create_key(100)
        save(gw, "peak", {"defaultCreditsPerCall": 5})
        save(gw, "night", {"defaultCreditsPerCall": 1, "toolPricing": {"add": {"creditsPerCall": 9}}})
        assert charged_by(gw, key) == 2  # saving changes nothing that runs
        answer = ok(gw, action="activate", name="peak")
        assert answer["ok"] is True and answer["changed"] == ["defaultCreditsPerCall"]
        assert answer["active"] == "peak" and answer["previous"] is None and len(answer["checksum"]) == 64
        assert charged_by(gw, key) == 5
        ok(gw, action="activate", name="night")
        assert charged_by(gw, key) == 1 and charged_by(gw, key, "add", {"a": 1, "b": 2}) == 9
        back = ok(gw, action="rollback")
        assert back["active"] == "peak" and back["previous"] == "night"
        assert sorted(back["changed"]) == ["defaultCreditsPerCall", "toolPricing"]
        assert charged_by(gw, key) == 5 and charged_by(gw, key, "add", {"a": 1, "b": 2}) == 5
        assert ok(gw, action="rollback")["active"] is None  # no profile before: the file's own values
        assert charged_by(gw, key) == 2
        assert post(gw, action="rollback").status_code == 409
        listing = get(gw)
        assert listing["active"] is None
        assert [h["action"] for h in listing["history"]] == ["activate", "activate", "rollback", "rollback"]
        assert gw.events("config_profile.activated")[-1]["data"]["name"] == "night"
        assert gw.events("config_profile.rolled_back")[-1]["data"]["name"] is None
        assert gw.events("config.reloaded")[-1]["data"]["source"] == "profile"


def test_a_file_reload_keeps_the_active_profile_on_top(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {"defaultCreditsPerCall": 2}) as (gw, file):
        key = gw.create_key(100)
        save(gw, "peak", {"defaultCreditsPerCall": 5})
        ok(gw, action="activate", name="peak")
        file.update(defaultCreditsPerCall=3, shadowMode=False, refundOnFailure=True)
        answer = reload_ok(gw)
        assert answer["changed"] == ["refundOnFailure"] and answer["skipped"] == ["defaultCreditsPerCall"]
        assert "active config profile 'peak'" in answer["warnings"][0]
        assert charged_by(gw, key) == 5
        ok(gw, action="rollback")  # back to the file: as it is now
        assert charged_by(gw, key) == 3


def test_inheritance_merges_parent_first_and_refuses_cycles(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, _):
        save(gw, "base", {"defaultCreditsPerCall": 3, "toolPricing": {"add": {"creditsPerCall": 4}}})
        child = save(gw, "child", {"toolPricing": {"echo": {"creditsPerCall": 7}}}, extends="base")
        assert child["chain"] == ["base", "child"]
        assert child["merged"] == {
            "defaultCreditsPerCall": 3,
            "toolPricing": {"add": {"creditsPerCall": 4}, "echo": {"creditsPerCall": 7}},
        }
        before = get(gw)
        resp = post(gw, action="save", name="base", settings={"defaultCreditsPerCall": 3}, extends="child")
        assert resp.status_code == 400 and "circular inheritance" in resp.json()["error"]
        resp = post(gw, action="save", name="solo", settings={}, extends="solo")
        assert resp.status_code == 400 and "circular" in resp.json()["error"]
        resp = post(gw, action="save", name="orphan", settings={}, extends="missing")
        assert resp.status_code == 400 and "does not exist" in resp.json()["error"]
        assert get(gw)["profiles"] == before["profiles"]  # refusals changed nothing
        # a parent's change reaches its child's merged settings and checksum
        old = get(gw, name="child")["checksum"]
        save(gw, "base", {"defaultCreditsPerCall": 6})
        assert (
            get(gw, name="child")["merged"]["defaultCreditsPerCall"] == 6 and get(gw, name="child")["checksum"] != old
        )
        deleted = gw.client.delete(PATH, params={"name": "base"}, headers=gw.admin())
        assert deleted.status_code == 409 and "extended by child" in deleted.json()["error"]


def test_refusals_are_400s_that_change_nothing(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, _):
        key = gw.create_key(100)
        cases = [
            ({"action": "save", "name": "x", "settings": {"port": 1}}, "not a reloadable setting: port"),
            ({"action": "save", "name": "x", "settings": {"defaultCreditsPerCall": "many"}}, "defaultCreditsPerCall"),
            ({"action": "save", "name": "bad name", "settings": {}}, "name must be"),
            ({"action": "save", "name": "x"}, "settings required"),
            ({"action": "activate", "name": "x", "a": "y"}, "a not used"),
            ({"action": "save", "name": "x", "settings": {"webhookUrl": "http://127.0.0.1:9/h"}}, "webhookUrl"),
            ({"action": "nope"}, ""),
        ]
        for body, words in cases:
            resp = post(gw, **body)
            assert resp.status_code == 400, (body, resp.text)
            assert words in resp.text, (words, resp.text)
        assert get(gw)["count"] == 0
        assert post(gw, action="activate", name="ghost").status_code == 404
        assert charged_by(gw, key) == 1


def test_diff_compares_flattened_keys_with_secrets_masked(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, _):
        save(gw, "a", {"defaultCreditsPerCall": 1, "shadowMode": True, "webhookSecret": SECRET})
        save(gw, "b", {"defaultCreditsPerCall": 2, "shadowMode": True, "toolPricing": {"add": {"creditsPerCall": 3}}})
        out = ok(gw, action="diff", a="a", b="b")
        assert out["onlyInA"] == {"webhookSecret": "***"}
        assert out["onlyInB"] == {"toolPricing.add.creditsPerCall": 3}
        assert out["changed"] == {"defaultCreditsPerCall": {"a": 1, "b": 2}}
        assert out["unchanged"] == {"shadowMode": True} and out["identical"] is False
        assert ok(gw, action="diff", a="a", b="a")["identical"] is True
        assert SECRET not in gw.client.get(PATH, params={"name": "a"}, headers=gw.admin()).text
        assert SECRET not in gw.client.get(PATH, headers=gw.admin()).text
        assert SECRET not in str(gw.events())


def test_export_then_import_merge_and_replace(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, _):
        save(gw, "base", {"defaultCreditsPerCall": 3, "webhookSecret": SECRET})
        save(gw, "child", {"shadowMode": True}, extends="base")
        export = get(gw, export="true")
        assert SECRET not in str(export) and export["version"] == 1
        assert export["profiles"][0]["masked"] == ["webhookSecret"]
        sums = {p["name"]: p["checksum"] for p in get(gw)["profiles"]}
        # merge: same names replaced (masked secrets kept from the stored profile), others kept
        save(gw, "extra", {"refundOnFailure": True})
        save(gw, "base", {"defaultCreditsPerCall": 8})  # changed since the export (and its secret dropped)
        done = ok(gw, action="import", data=export, mode="merge")
        assert done["imported"] == ["base", "child"] and done["removed"] == []
        assert "webhookSecret was masked" in done["warnings"][0]  # nothing stored to put back
        assert get(gw, name="base")["merged"] == {"defaultCreditsPerCall": 3}
        assert {p["name"] for p in get(gw)["profiles"]} == {"base", "child", "extra"}
        # replace: exactly the export's profiles
        save(gw, "base", {"defaultCreditsPerCall": 3, "webhookSecret": SECRET})
        done = ok(gw, action="import", data=export, mode="replace")
        assert done["removed"] == ["extra"] and done["warnings"] == []
        assert {p["name"]: p["checksum"] for p in get(gw)["profiles"]} == sums  # the secret was put back
        # a bad import (a cycle) changes nothing
        bad = {
            "profiles": [{"name": "p", "extends": "q", "settings": {}}, {"name": "q", "extends": "p", "settings": {}}]
        }
        resp = post(gw, action="import", data=bad, mode="replace")
        assert resp.status_code == 400 and "circular" in resp.json()["error"]
        resp = post(gw, action="import", data={"profiles": [{"settings": {}}]}, mode="merge")
        assert resp.status_code == 400 and "needs a name" in resp.json()["error"]
        assert {p["name"] for p in get(gw)["profiles"]} == {"base", "child"}


def test_delete_refuses_the_active_profile_and_roles(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, _):
        save(gw, "p", {"defaultCreditsPerCall": 2})
        ok(gw, action="activate", name="p")
        assert gw.client.delete(PATH, params={"name": "p"}, headers=gw.admin()).status_code == 409
        resp = gw.client.post("/admin/keys", json={"name": "v", "role": "viewer"}, headers=gw.admin())
        viewer = {"X-Admin-Key": resp.json()["key"]}
        assert gw.client.get(PATH, headers=viewer).status_code == 200
        assert gw.client.post(PATH, json={"action": "rollback"}, headers=viewer).status_code == 403
        assert gw.client.delete(PATH, params={"name": "p"}, headers=viewer).status_code == 403
        ok(gw, action="rollback")
        assert gw.client.delete(PATH, params={"name": "p"}, headers=gw.admin()).json() == {"deleted": "p"}
        assert gw.client.delete(PATH, params={"name": "p"}, headers=gw.admin()).status_code == 404
        metrics = gw.client.get("/metrics").text
        assert "paygate_config_profile_activations_total 2.0" in metrics


def test_the_active_profile_is_applied_again_after_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with reloadable_gateway(tmp_path, {"defaultCreditsPerCall": 2}, state_file=state) as (gw, _):
        save(gw, "peak", {"defaultCreditsPerCall": 6})
        ok(gw, action="activate", name="peak")
        key = gw.create_key(100)
    with reloadable_gateway(tmp_path, {"defaultCreditsPerCall": 2}, state_file=state) as (gw, _):
        assert get(gw)["active"] == "peak"
        assert charged_by(gw, key) == 6
