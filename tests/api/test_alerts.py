"""Alerts through the real CLI: POST /alerts, GET /alerts, GET /alerts/rules, alert.fired in the audit log.

The module's gateway is shared, and so are its rules and its alert queue: each test sets its own rules
and looks only at the alerts of keys it made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway, start_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, wait_until


def set_rules(gw: InProcessGateway, rules: list[dict[str, Any]]) -> dict[str, Any]:
    resp = gw.client.post("/alerts", headers=gw.admin(), json={"rules": rules})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def consume(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/alerts", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def alerts_of(gw: InProcessGateway, raw: str) -> list[dict[str, Any]]:
    return [a for a in consume(gw)["alerts"] if a["keyMasked"] == masked(raw)]


def collect(gw: InProcessGateway, raw: str, what: str) -> list[dict[str, Any]]:
    """Consume until the key has alerts (each GET clears the queue, so keep what each returns)."""
    got: list[dict[str, Any]] = []

    def some() -> bool:
        got.extend(alerts_of(gw, raw))
        return bool(got)

    wait_until(some, what=what)
    return got


def call(gw: InProcessGateway, raw: str, times: int = 1) -> list[dict[str, Any]]:
    return [gw.call_tool("echo", {"text": "hi"}, raw, msg_id=i) for i in range(times)]


def fired_in_audit(gw: InProcessGateway, raw: str) -> list[dict[str, Any]]:
    resp = gw.client.get("/audit", headers=gw.admin(), params={"types": "alert.fired", "limit": 1000})
    assert resp.status_code == 200, resp.text
    return [e for e in resp.json()["events"] if e["metadata"]["keyMasked"] == masked(raw)]


def test_posting_rules_replaces_the_set_and_answers_with_the_stored_rules(gw: InProcessGateway) -> None:
    body = set_rules(
        gw,
        [
            {"type": "spending_threshold", "threshold": 80},
            {"type": "key_expiry_soon", "threshold": 86400, "cooldownSeconds": 60},
        ],
    )
    assert body["rules"] == [
        {"type": "spending_threshold", "threshold": 80, "cooldownSeconds": 300},
        {"type": "key_expiry_soon", "threshold": 86400, "cooldownSeconds": 60},
    ]
    assert body["count"] == 2 and body["source"] == "api"
    current = gw.client.get("/alerts/rules", headers=gw.admin()).json()
    assert current == {"rules": body["rules"], "count": 2, "source": "api"}
    set_rules(gw, [{"type": "credits_low", "threshold": 2.5}])
    assert gw.client.get("/alerts/rules", headers=gw.admin()).json()["rules"] == [
        {"type": "credits_low", "threshold": 2.5, "cooldownSeconds": 300}
    ]
    configured = [e for e in gw.events("admin.alerts_configured") if e["data"]["types"] == ["credits_low"]]
    assert configured and configured[-1]["data"]["ruleCount"] == 1


def test_a_crossed_threshold_is_returned_once_then_the_queue_is_empty(gw: InProcessGateway) -> None:
    set_rules(gw, [{"type": "credits_low", "threshold": 5, "cooldownSeconds": 3600}])
    raw = gw.create_key(7, name="low-balance")
    call(gw, raw, 2)  # 5 left: not below 5
    assert alerts_of(gw, raw) == []
    call(gw, raw)  # 4 left
    got = collect(gw, raw, "the credits_low alert")
    assert len(got) == 1
    alert = got[0]
    assert alert["type"] == "credits_low" and alert["currentValue"] == 4 and alert["threshold"] == 5
    assert alert["keyName"] == "low-balance" and alert["keyPrefix"] == f"{raw[:7]}..."
    assert alert["timestamp"].endswith("Z") and "4 credits" in alert["message"]
    assert raw not in json.dumps(alert)
    assert alerts_of(gw, raw) == []  # consumed


def test_alert_fired_is_in_the_audit_log_and_the_cooldown_holds_back_repeats(gw: InProcessGateway) -> None:
    set_rules(gw, [{"type": "spending_threshold", "threshold": 50, "cooldownSeconds": 3600}])
    raw = gw.create_key(4)
    call(gw, raw, 2)  # 2 of 4 spent: 50%
    wait_until(lambda: len(fired_in_audit(gw, raw)) == 1, what="alert.fired in the audit log")
    call(gw, raw, 2)  # still over the threshold, inside the cooldown
    assert len(alerts_of(gw, raw)) == 1
    event = fired_in_audit(gw, raw)
    assert len(event) == 1 and event[0]["actor"] == "system"
    meta = event[0]["metadata"]
    assert meta["alertType"] == "spending_threshold" and meta["value"] == 50.0 and meta["threshold"] == 50
    assert meta["keyPrefix"] == f"{raw[:7]}..." and meta["message"]


def test_quota_warning_follows_the_keys_daily_call_quota(gw: InProcessGateway) -> None:
    set_rules(gw, [{"type": "quota_warning", "threshold": 50}])
    capped = gw.create_key(100, quota={"dailyCallLimit": 4})
    free = gw.create_key(100)
    call(gw, capped, 1)
    call(gw, free, 3)
    assert alerts_of(gw, capped) == []
    call(gw, capped, 1)
    got = [a for a in consume(gw)["alerts"] if a["keyMasked"] in (masked(capped), masked(free))]
    assert [(a["keyMasked"], a["currentValue"]) for a in got] == [(masked(capped), 50.0)]
    assert got[0]["metadata"] == {"quotaType": "dailyCalls", "used": 2, "limit": 4}


def test_key_expiry_soon_fires_for_a_key_expiring_within_the_threshold(gw: InProcessGateway) -> None:
    set_rules(gw, [{"type": "key_expiry_soon", "threshold": 3600}])
    soon, later = gw.create_key(10, expiresIn=600), gw.create_key(10, expiresIn=7200)
    call(gw, soon)
    call(gw, later)
    got = [a for a in consume(gw)["alerts"] if a["keyMasked"] in (masked(soon), masked(later))]
    assert [a["keyMasked"] for a in got] == [masked(soon)]
    assert 0 < got[0]["currentValue"] <= 600


def test_rate_limit_spike_fires_for_a_key_whose_calls_are_rate_limited() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "2") as gw:
        set_rules(gw, [{"type": "rate_limit_spike", "threshold": 3}])
        raw = gw.create_key(100)
        answers = call(gw, raw, 5)  # 2 allowed, 3 denied
        assert [a.get("error", {}).get("data", {}).get("reason") for a in answers][2:] == ["rate_limited"] * 3
        got = collect(gw, raw, "the rate_limit_spike alert")
        assert [(a["type"], a["currentValue"]) for a in got] == [("rate_limit_spike", 3)]
        assert got[0]["metadata"] == {"denialCount": 3, "windowMinutes": 5}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"rules": "x"},
        {"rules": [{"type": "nope", "threshold": 1}]},
        {"rules": [{"type": "spending_threshold", "threshold": 101}]},
        {"rules": [{"type": "quota_warning", "threshold": 100.5}]},
        {"rules": [{"type": "credits_low", "threshold": -1}]},
        {"rules": [{"type": "credits_low", "threshold": "5"}]},
        {"rules": [{"type": "credits_low", "threshold": True}]},
        {"rules": [{"type": "credits_low"}]},
        {"rules": [{"type": "credits_low", "threshold": 5, "cooldownSeconds": 1.5}]},
        {"rules": [{"type": "credits_low", "threshold": 5, "cooldownSeconds": -1}]},
        {"rules": [{"type": "credits_low", "threshold": 5, "extra": 1}]},
        {"rules": [{"type": "credits_low", "threshold": 5}, {"type": "credits_low", "threshold": 5}]},
        {"rules": [{"type": "credits_low", "threshold": i} for i in range(51)]},
        {"rules": [], "extra": True},
    ],
)
def test_bad_bodies_are_400_and_the_old_rules_stay(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before = set_rules(gw, [{"type": "credits_low", "threshold": 7, "cooldownSeconds": 9}])["rules"]
    resp = gw.client.post("/alerts", headers=gw.admin(), json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert gw.client.get("/alerts/rules", headers=gw.admin()).json()["rules"] == before


def test_non_finite_thresholds_are_400(gw: InProcessGateway) -> None:
    for text in (
        '{"rules": [{"type": "credits_low", "threshold": NaN}]}',
        '{"rules": [{"type": "credits_low", "threshold": Infinity}]}',
    ):
        resp = gw.client.post("/alerts", headers={**gw.admin(), "Content-Type": "application/json"}, content=text)
        assert resp.status_code == 400, resp.text


def test_alerts_need_an_admin_key_and_consuming_them_the_admin_role(gw: InProcessGateway) -> None:
    for method, path in (("GET", "/alerts"), ("POST", "/alerts"), ("GET", "/alerts/rules")):
        assert gw.client.request(method, path, json={"rules": []}).status_code == 401, path
    viewer = {
        "X-Admin-Key": gw.client.post(
            "/admin/keys", headers=gw.admin(), json={"name": "alert viewer", "role": "viewer"}
        ).json()["key"]
    }
    assert gw.client.get("/alerts/rules", headers=viewer).status_code == 200
    assert gw.client.get("/alerts", headers=viewer).status_code == 403
    assert gw.client.post("/alerts", headers=viewer, json={"rules": []}).status_code == 403


def test_rules_set_through_the_api_survive_a_restart_and_win_over_the_config_file(tmp_path: Path) -> None:
    state_file = str(tmp_path / "s.db")
    config = tmp_path / "paygate.json"
    config.write_text(json.dumps({"alertRules": [{"type": "credits_low", "threshold": 10}]}))
    admin = "admin_alerts_restart_0123456789abcdef"
    args = ("--server", ECHO_COMMAND, "--config", str(config))
    with running_inprocess_gateway(*args, state_file=state_file, admin_key=admin) as gw:
        assert gw.client.get("/alerts/rules", headers=gw.admin()).json()["source"] == "config"
        set_rules(gw, [{"type": "spending_threshold", "threshold": 90, "cooldownSeconds": 30}])
    with running_inprocess_gateway(*args, state_file=state_file, admin_key=admin) as gw:
        current = gw.client.get("/alerts/rules", headers=gw.admin()).json()
        assert current == {
            "rules": [{"type": "spending_threshold", "threshold": 90, "cooldownSeconds": 30}],
            "count": 1,
            "source": "api",
        }


def test_alert_rules_from_the_config_file_are_active_at_start(tmp_path: Path) -> None:
    config = tmp_path / "paygate.json"
    config.write_text(json.dumps({"alertRules": [{"type": "credits_low", "threshold": 3, "cooldownSeconds": 60}]}))
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--config", str(config)) as gw:
        assert gw.client.get("/alerts/rules", headers=gw.admin()).json() == {
            "rules": [{"type": "credits_low", "threshold": 3, "cooldownSeconds": 60}],
            "count": 1,
            "source": "config",
        }
        raw = gw.create_key(3)
        call(gw, raw)
        got = collect(gw, raw, "the config rule's alert")
        assert [(a["type"], a["currentValue"]) for a in got] == [("credits_low", 2)]


def test_a_config_file_with_a_bad_alert_rule_stops_the_start(tmp_path: Path) -> None:
    config = tmp_path / "paygate.json"
    config.write_text(json.dumps({"alertRules": [{"type": "quota_warning", "threshold": 150}]}))
    with pytest.raises(RuntimeError, match="alertRules"):
        start_inprocess_gateway("--server", ECHO_COMMAND, "--config", str(config)).stop()  # stopped if it did start
