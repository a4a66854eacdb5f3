"""GET /keys/expiring and the expiry scanner's `key.expiry_warning` events (one per key and threshold)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from paygate.config import Settings
from paygate.keys.expiry import ExpiryScanner, ScannerConfig
from paygate.keys.service import KeyService
from paygate.store.sqlite import SQLiteStore
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, wait_until


def expiring(gw: InProcessGateway, **params: Any) -> dict[str, Any]:
    resp = gw.client.get("/keys/expiring", params=params, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def warnings_for(gw: InProcessGateway, raw: str) -> list[int]:
    return [e["data"]["threshold"] for e in gw.events("key.expiry_warning") if e["data"]["keyMasked"] == masked(raw)]


def test_the_listing_shows_active_keys_expiring_within_the_window_soonest_first(gw: InProcessGateway) -> None:
    later = gw.create_key(1, expiresIn=7200, name="later")
    sooner = gw.create_key(1, expiresIn=600, name="sooner")
    far = gw.create_key(1, expiresIn=10 * 86400)
    never = gw.create_key(1)
    revoked = gw.create_key(1, expiresIn=300)
    assert gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": revoked}).status_code == 200
    body = expiring(gw)
    assert body["within"] == 86400 and body["count"] == len(body["keys"])
    shown = [k["keyMasked"] for k in body["keys"]]
    assert shown.index(masked(sooner)) < shown.index(masked(later))
    for absent in (far, never, revoked):
        assert masked(absent) not in shown
    entry = next(k for k in body["keys"] if k["keyMasked"] == masked(sooner))
    assert entry["name"] == "sooner" and 0 < entry["remainingSeconds"] <= 600 and entry["expiresAt"].endswith("Z")
    assert masked(far) in [k["keyMasked"] for k in expiring(gw, within=11 * 86400)["keys"]]
    assert masked(later) not in [k["keyMasked"] for k in expiring(gw, within=3600)["keys"]]


def test_the_answer_describes_the_scanner(gw: InProcessGateway) -> None:
    wait_until(lambda: expiring(gw)["scanner"]["scans"] >= 1, what="the startup scan")
    scanner = expiring(gw)["scanner"]
    assert scanner["enabled"] is True and scanner["intervalSeconds"] == 3600
    assert scanner["thresholds"] == [604800, 86400, 3600]
    assert scanner["lastScanAt"].endswith("Z") and scanner["nextScanAt"] > scanner["lastScanAt"]


@pytest.mark.parametrize("within", ["0", "-5", "soon", "1.5", str(400 * 86400)])
def test_a_bad_window_is_a_400(gw: InProcessGateway, within: str) -> None:
    resp = gw.client.get("/keys/expiring", params={"within": within}, headers=gw.admin())
    assert resp.status_code == 400 and resp.json()["error"].startswith("Invalid request")


def test_warnings_are_sent_once_per_key_and_threshold_across_restarts(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    hour_left = "pg_" + secrets.token_hex(24)
    half_hour = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1800))
    two_days = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2 * 86400))
    events: list[dict[str, Any]] = []
    for run in range(3):  # every start scans at once; nothing already warned about is warned about again
        with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as gw:
            if run == 0:
                resp = gw.client.post(
                    "/keys/import",
                    headers=gw.admin(),
                    json={
                        "keys": [
                            {"key": hour_left, "alias": "expiring-soon", "namespace": "exp", "expiresAt": half_hour}
                        ]
                    },
                )
                assert resp.status_code == 200
                days_left = gw.create_key(1, expiresAt=two_days)
                never = gw.create_key(1)
            wait_until(lambda: expiring(gw)["scanner"]["scans"] >= 1, what="the startup scan")
            events += gw.events("key.expiry_warning")
    sent = {
        k: [e["data"]["threshold"] for e in events if e["data"]["keyMasked"] == masked(k)]
        for k in (hour_left, days_left, never)
    }
    assert sent == {hour_left: [3600], days_left: [604800], never: []}
    event = next(e for e in events if e["data"]["keyMasked"] == masked(hour_left))
    assert event["data"]["alias"] == "expiring-soon" and event["data"]["namespace"] == "exp"
    assert 0 < event["data"]["remainingSeconds"] <= 1800 and event["actor"] == "system"
    assert hour_left not in str(events)


# The scanner's rules, driven with a simulated clock on a real store.


def scanner_world() -> tuple[SQLiteStore, KeyService, ExpiryScanner, list[dict[str, Any]]]:
    store = SQLiteStore()
    store.open()
    published: list[dict[str, Any]] = []
    scanner = ExpiryScanner(
        store, lambda type_, actor, **data: published.append({"type": type_, **data}), ScannerConfig()
    )
    return store, KeyService(store), scanner, published


def test_thresholds_fire_progressively_as_expiry_approaches() -> None:
    store, keys, scanner, published = scanner_world()
    t0 = 1_000_000.0
    record = keys.create("k", 1, expires_at=t0 + 10 * 86400).record
    assert scanner.scan(t0) == 0
    assert scanner.scan(t0 + 3.5 * 86400) == 1  # 6.5 days left
    assert scanner.scan(t0 + 3.6 * 86400) == 0
    assert scanner.scan(t0 + 9.5 * 86400) == 1  # 12 hours left
    assert scanner.scan(t0 + 10 * 86400 - 1800) == 1  # 30 minutes left
    assert scanner.scan(t0 + 10 * 86400 - 60) == 0
    assert scanner.scan(t0 + 10 * 86400 + 60) == 0  # expired: no more warnings
    assert [p["threshold"] for p in published] == [604800, 86400, 3600]
    assert all(p["keyMasked"] == record.masked for p in published)
    store.close()


def test_a_key_past_several_thresholds_gets_one_warning_for_the_tightest() -> None:
    store, keys, scanner, published = scanner_world()
    keys.create("k", 1, expires_at=5000.0 + 1200)
    assert scanner.scan(5000.0) == 1 and scanner.scan(5001.0) == 0
    assert [p["threshold"] for p in published] == [3600]
    store.close()


def test_changing_the_expiry_starts_the_warnings_afresh() -> None:
    store, keys, scanner, published = scanner_world()
    record = keys.create("k", 1, expires_at=1000.0 + 1800).record
    assert scanner.scan(1000.0) == 1
    record.expires_at = 1000.0 + 2 * 86400  # extended
    store.update_key(record)
    assert scanner.scan(1001.0) == 1
    assert [p["threshold"] for p in published] == [3600, 604800]
    store.close()


def test_the_scanner_runs_at_the_first_tick_then_every_interval() -> None:
    store, _keys, scanner, _ = scanner_world()
    scanner.tick(100.0)
    scanner.tick(101.0)
    assert scanner.scans == 1
    scanner.tick(100.0 + 3600)
    assert scanner.scans == 2
    off = ExpiryScanner(store, lambda *a, **k: None, ScannerConfig(enabled=False))
    off.tick(100.0)
    assert off.scans == 0
    store.close()


def test_scanner_config_is_read_from_settings_and_validated() -> None:
    settings = Settings.model_validate({"expiryScanner": {"intervalSeconds": 120, "thresholds": [60, 7200, 60]}})
    config = ScannerConfig.from_settings(settings)
    assert config.interval_seconds == 120 and config.thresholds == (7200, 60)
    assert ScannerConfig.from_settings(Settings()) == ScannerConfig()
    for bad in ({"intervalSeconds": 5}, {"thresholds": [-1]}, {"thresholds": []}, {"intervalSeconds": "soon"}):
        with pytest.raises(ValidationError):
            Settings.model_validate({"expiryScanner": bad})
