"""POST /config/reload through the real app (in-process): each hot-reloadable field takes effect on the
next call, the rest is reported as skipped, flags keep winning over the file, and a call already in
flight finishes on what it was admitted with (docs/reload.md)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from paygate.config import DEFAULT_FREE_METHODS
from tests.api.reload_support import charged_by, reload_ok, reloadable_gateway
from tests.echo_backend import EchoBackend
from tests.support import wait_until
from tests.webhook_receiver import receiving


def reason(reply: dict[str, Any]) -> str:
    return str(reply["error"]["data"]["reason"])


def test_a_price_change_charges_the_new_price_from_the_next_call(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {"defaultCreditsPerCall": 2, "toolPricing": {"add": {"creditsPerCall": 3}}}) as (
        gw,
        file,
    ):
        key = gw.create_key(100)
        assert charged_by(gw, key) == 2 and charged_by(gw, key, "add", {"a": 1, "b": 2}) == 3
        file.update(defaultCreditsPerCall=5, toolPricing={"add": {"creditsPerCall": 7}})
        answer = reload_ok(gw)
        assert answer == {
            "ok": True,
            "changed": ["defaultCreditsPerCall", "toolPricing"],
            "skipped": [],
            "warnings": [],
            "message": "Config reloaded: 2 fields updated",
        }
        assert charged_by(gw, key) == 5 and charged_by(gw, key, "add", {"a": 1, "b": 2}) == 7
        # what clients and admins read follows: /pricing, tools/list's _pricing, GET /config
        pricing = gw.client.get("/pricing").json()["server"]
        assert pricing["defaultCreditsPerCall"] == 5 and pricing["toolPricing"]["add"]["creditsPerCall"] == 7
        tools = {t["name"]: t for t in gw.rpc("tools/list", key=key).json()["result"]["tools"]}
        assert tools["add"]["_pricing"]["creditsPerCall"] == 7 and tools["echo"]["_pricing"]["creditsPerCall"] == 5
        assert gw.client.get("/config", headers=gw.admin()).json()["defaultCreditsPerCall"] == 5
        events = gw.events("config.reloaded")
        assert events[-1]["actor"] == "admin" and events[-1]["data"]["changed"] == answer["changed"]
        assert events[-1]["data"]["source"] == "api" and events[-1]["data"]["path"] == str(file.path)


def test_an_unchanged_file_changes_nothing(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, _):
        assert reload_ok(gw)["changed"] == [] and reload_ok(gw)["message"] == "Config reloaded: 0 fields updated"


def test_the_global_rate_limit_follows_a_reload(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, file):
        key = gw.create_key(100)
        for _ in range(3):
            assert "result" in gw.call_tool("echo", {"text": "x"}, key)
        file.update(globalRateLimitPerMin=2)  # unlimited calls were not counted: the window starts now
        assert reload_ok(gw)["changed"] == ["globalRateLimitPerMin"]
        for _ in range(2):
            assert "result" in gw.call_tool("echo", {"text": "x"}, key)
        refused = gw.call_tool("echo", {"text": "x"}, key)
        assert reason(refused) == "rate_limited" and gw.balance(key) == 95  # refused before any charge


def test_shadow_mode_switched_on_and_off(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, file):
        key = gw.create_key(10)
        file.update(shadowMode=True)
        assert reload_ok(gw)["changed"] == ["shadowMode"]
        assert charged_by(gw, key) == 0
        assert gw.client.get("/info").json()["features"]["shadowMode"] is True
        file.update(shadowMode=False)
        reload_ok(gw)
        assert charged_by(gw, key) == 1


def test_free_methods_follow_a_reload(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, file):
        assert "result" in gw.rpc("tools/list").json()  # free: no key needed
        file.update(freeMethods=[m for m in DEFAULT_FREE_METHODS if m != "tools/list"])
        assert reload_ok(gw)["changed"] == ["freeMethods"]
        assert reason(gw.rpc("tools/list").json()) == "missing_api_key"
        key = gw.create_key(5)
        assert "result" in gw.rpc("tools/list", key=key).json() and gw.balance(key) == 5  # a key: still no charge


def test_a_global_quota_applies_to_the_next_call(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, file):
        key = gw.create_key(100)
        assert charged_by(gw, key) == 1
        file.update(globalQuota={"dailyCallLimit": 2})
        assert reload_ok(gw)["changed"] == ["globalQuota"]
        assert charged_by(gw, key) == 1
        assert reason(gw.call_tool("echo", {"text": "x"}, key)) == "quota_exceeded" and gw.balance(key) == 98
        file.update(globalQuota=None)
        reload_ok(gw)
        assert charged_by(gw, key) == 1


def test_a_new_webhook_url_receives_the_next_events(tmp_path: Path) -> None:
    config = {"webhookAllowPrivate": True, "webhookFlushSeconds": 0.05}
    with receiving() as first, receiving() as second, reloadable_gateway(tmp_path, config) as (gw, file):
        file.update(webhookUrl=first.url(), webhookSecret="s3cret-for-tests")
        answer = reload_ok(gw)
        assert answer["changed"] == ["webhookSecret", "webhookUrl"]
        key = gw.create_key(10)
        wait_until(lambda: any(e["type"] == "key.created" for e in first.delivered_admin()), 10, "the first hook")
        assert first.ok()[-1].headers.get("x-paygate-signature")  # signed with the new secret
        assert gw.client.get("/health").json()["webhooks"]["deadLetterCount"] == 0  # /health follows too
        file.update(webhookUrl=second.url(), webhookMaxRetries=1)
        assert reload_ok(gw)["changed"] == ["webhookMaxRetries", "webhookUrl"]
        assert gw.client.get("/webhooks/stats", headers=gw.admin()).json()["maxRetries"] == 1
        gw.call_tool("echo", {"text": "x"}, key)
        wait_until(lambda: bool(second.delivered_events()), 10, "the second hook")
        assert "s3cret-for-tests" not in str(gw.events("config.reloaded"))  # names only, never values


def test_alert_rules_from_the_file_are_in_force_after_a_reload(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, file):
        assert gw.client.get("/alerts/rules", headers=gw.admin()).json()["count"] == 0
        file.update(alertRules=[{"type": "credits_low", "threshold": 5}])
        assert reload_ok(gw)["changed"] == ["alertRules"]
        rules = gw.client.get("/alerts/rules", headers=gw.admin()).json()
        assert rules["count"] == 1 and rules["source"] == "config"
        key = gw.create_key(5)
        gw.call_tool("echo", {"text": "x"}, key)  # 4 left: under the new threshold
        wait_until(lambda: bool(gw.events("alert.fired")), 10, "credits_low to fire")
        # rules set through the API win over the file's, and the answer says so
        assert gw.client.post("/alerts", headers=gw.admin(), json={"rules": []}).status_code == 200
        file.update(alertRules=[{"type": "credits_low", "threshold": 7}])
        answer = reload_ok(gw)
        assert answer["changed"] == ["alertRules"] and "POST /alerts" in answer["warnings"][0]
        assert gw.client.get("/alerts/rules", headers=gw.admin()).json()["count"] == 0


def test_fields_that_need_a_restart_are_skipped_and_stay(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {"name": "before", "toolTimeoutSeconds": 30}) as (gw, file):
        file.update(name="after", toolTimeoutSeconds=5, serverArgs=[*file.config["serverArgs"], "--x"])
        file.update(defaultCreditsPerCall=3, oauth={})
        answer = reload_ok(gw)
        assert answer["changed"] == ["defaultCreditsPerCall"]
        assert answer["skipped"] == ["name", "oauth", "serverArgs", "toolTimeoutSeconds"]
        config = gw.client.get("/config", headers=gw.admin()).json()
        assert config["name"] == "before" and config["toolTimeoutSeconds"] == 30 and config["oauth"] is None


def test_a_flag_keeps_winning_over_the_file(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}, "--price", "4", "--tool-price", "add:6") as (gw, file):
        key = gw.create_key(100)
        file.update(defaultCreditsPerCall=9, toolPricing={"add": {"creditsPerCall": 8}, "echo": {"creditsPerCall": 2}})
        answer = reload_ok(gw)
        assert answer["changed"] == ["toolPricing"] and answer["skipped"] == ["defaultCreditsPerCall"]
        assert any(w.startswith("defaultCreditsPerCall: set by a command-line flag") for w in answer["warnings"])
        assert any(
            w.startswith("toolPricing.add.creditsPerCall: set by a command-line flag") for w in answer["warnings"]
        )
        assert charged_by(gw, key, "add", {"a": 1, "b": 1}) == 6 and charged_by(gw, key) == 2


def test_a_tools_timeout_and_cache_settings_follow_a_reload(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {}) as (gw, file):
        key = gw.create_key(100)
        pricing = {"echo": {"creditsPerCall": 2, "cacheTtlSeconds": 60}, "slow": {"timeoutMs": 300}}
        file.update(toolPricing=pricing)
        answer = reload_ok(gw)
        assert answer["changed"] == ["toolPricing"] and answer["warnings"] == []
        assert gw.call_tool("slow", {"seconds": 5}, key)["error"]["code"] == -32004  # the new timeout
        assert charged_by(gw, key, "echo", {"text": "cached"}) == 2
        gw.call_tool("echo", {"text": "cached"}, key)
        cache = gw.client.get("/admin/cache", headers=gw.admin()).json()
        assert cache["toolTtlSeconds"] == {"echo": 60} and cache["hits"] == 1
        file.update(toolPricing={**pricing, "echo": {**pricing["echo"], "cacheShared": True}})
        reload_ok(gw)  # answers cached for one key are not handed to every key: the tool's entries go
        cache = gw.client.get("/admin/cache", headers=gw.admin()).json()
        assert cache["entries"] == 0 and cache["sharedTools"] == ["echo"]
        # timeouts an admin set stay in force over the file's, and the answer says so
        resp = gw.client.post("/admin/timeouts", headers=gw.admin(), json={"tools": {"slow": 400}})
        assert resp.status_code == 200, resp.text
        file.update(toolPricing={**pricing, "echo": {"creditsPerCall": 2}, "slow": {"timeoutMs": 900}})
        answer = reload_ok(gw)
        assert [w.split(":")[0] for w in answer["warnings"]] == ["toolPricing.*.timeoutMs"]
        assert gw.client.get("/admin/timeouts", headers=gw.admin()).json()["tools"] == {"slow": 400}


def test_a_call_in_flight_finishes_on_the_price_and_refund_policy_it_was_admitted_with(tmp_path: Path) -> None:
    config = {"defaultCreditsPerCall": 3, "refundOnFailure": False, "toolPricing": {"slow": {"timeoutMs": 1500}}}
    with reloadable_gateway(tmp_path, config) as (gw, file):
        key = gw.create_key(100)
        backend = gw.rt.backend if gw.rt else None
        assert isinstance(backend, EchoBackend)
        replies: list[dict[str, Any]] = []
        call = threading.Thread(target=lambda: replies.append(gw.call_tool("slow", {"seconds": 31}, key)))
        call.start()
        wait_until(lambda: 31 in backend.started, 10, "the slow call to reach the backend")
        file.update(defaultCreditsPerCall=7, refundOnFailure=True, toolPricing={"slow": {"timeoutMs": 1500}})
        assert reload_ok(gw)["changed"] == ["defaultCreditsPerCall", "refundOnFailure"]
        call.join(30)
        assert replies and replies[0]["error"]["code"] == -32004  # timed out: a failure
        assert gw.balance(key) == 97  # charged 3 as admitted, and not refunded (the policy it was admitted with)
        assert gw.call_tool("slow", {"seconds": 32}, key)["error"]["code"] == -32004
        assert gw.balance(key) == 97  # the next one: 7 charged, then refunded under the new policy


def test_watch_config_reloads_a_changed_file(tmp_path: Path) -> None:
    with reloadable_gateway(tmp_path, {"defaultCreditsPerCall": 2}, "--watch-config") as (gw, file):
        key = gw.create_key(100)
        file.update(defaultCreditsPerCall=6)
        wait_until(lambda: bool(gw.events("config.reloaded")), 15, "the watcher's reload")
        event = gw.events("config.reloaded")[0]
        assert event["actor"] == "system" and event["data"]["source"] == "watch"
        assert event["data"]["changed"] == ["defaultCreditsPerCall"] and charged_by(gw, key) == 6
        file.path.write_text("{")  # refused once, logged, and not retried until it changes again
        wait_until(lambda: bool(gw.events("config.reload_failed")), 15, "the watcher's refused reload")
        assert "config reload (watch) refused, nothing changed" in gw.stderr() and charged_by(gw, key) == 6
