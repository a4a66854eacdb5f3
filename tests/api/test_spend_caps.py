"""Spend caps (docs/money-rules.md#spend-caps): GET/POST /admin/spend-caps, refusal before any charge,
the suspend action and its auto-resume, persistence across a restart, metrics, audit.

Each test sets the caps it needs through the API (the module shares one gateway) and puts them back off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paygate.core.spend_caps import DAY
from tests.api.money_support import admitted_and_reasons, audited_gateway, racing_echo_calls
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, wait_until, write_config

OFF = {"serverDailyCreditCap": 0, "serverDailyCallCap": 0, "hourlyCallLimit": 0, "hourlyCreditLimit": 0}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    with audited_gateway(tmp_path_factory, "spend-caps") as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def _caps_off(gw: InProcessGateway) -> Iterator[None]:
    yield
    body = {**OFF, "breachAction": "deny", "autoResumeAfterSeconds": 0}
    assert gw.client.post("/admin/spend-caps", json=body, headers=gw.admin()).status_code == 200


def _set(gw: InProcessGateway, **fields: Any) -> dict[str, Any]:
    resp = gw.client.post("/admin/spend-caps", json=fields, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _view(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/spend-caps", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _echo(gw: InProcessGateway, key: str) -> dict[str, Any]:
    return gw.call_tool("echo", {"text": "hi"}, key)


def test_defaults_are_the_references_and_off(gw: InProcessGateway) -> None:
    view = _view(gw)
    assert view["enabled"] is False
    assert {k: view[k] for k in OFF} == OFF
    assert view["breachAction"] == "deny" and view["autoResumeAfterSeconds"] == 0
    assert gw.rt is not None and gw.rt.billing.facts.caps is None  # nothing on the hot path while off


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"serverDailyCallCap": -1},
        {"serverDailyCallCap": "5"},
        {"serverDailyCallCap": 1.5},
        {"hourlyCreditLimit": 2_000_000_000},
        {"breachAction": "explode"},
        {"autoResumeAfterSeconds": -5},
        {"madeUp": 1},
    ],
)
def test_invalid_changes_are_refused_with_400_and_change_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    _set(gw, serverDailyCallCap=7)
    before = _view(gw)
    resp = gw.client.post("/admin/spend-caps", json=body, headers=gw.admin())
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]
    after = _view(gw)
    assert {k: after[k] for k in (*OFF, "breachAction", "autoResumeAfterSeconds")} == {
        k: before[k] for k in (*OFF, "breachAction", "autoResumeAfterSeconds")
    }


def test_roles_a_viewer_reads_only_admins_change(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/keys", json={"name": "v", "role": "viewer"}, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    viewer = {"X-Admin-Key": resp.json()["key"]}
    assert gw.client.get("/admin/spend-caps", headers=viewer).status_code == 200
    assert gw.client.post("/admin/spend-caps", json={"serverDailyCallCap": 1}, headers=viewer).status_code == 403
    assert gw.client.get("/admin/spend-caps").status_code == 401
    assert _view(gw)["serverDailyCallCap"] == 0


def test_a_server_daily_call_cap_refuses_before_any_charge(gw: InProcessGateway) -> None:
    view = _set(gw, serverDailyCallCap=_view(gw)["serverStats"]["dailyCalls"] + 2)
    assert view["enabled"] is True
    a, b = gw.create_key(10), gw.create_key(10)
    assert "result" in _echo(gw, a) and "result" in _echo(gw, b)
    reply = _echo(gw, a)
    error = reply["error"]
    assert error["code"] == -32402 and error["data"]["reason"] == "spend_cap_exceeded"
    assert "server_daily_call_cap" in error["message"]
    assert gw.balance(a) == 9 and gw.balance(b) == 9  # the refused call cost nothing
    assert _view(gw)["denied"]["server_daily_call_cap"] >= 1
    entry = next(
        e
        for e in _audit(gw, "gate.deny")
        if e["actor"] == masked(a) and e["metadata"]["reason"] == "spend_cap_exceeded"
    )
    assert entry["metadata"]["tool"] == "echo"


def test_a_server_daily_credit_cap_counts_credits(gw: InProcessGateway) -> None:
    used = _view(gw)["serverStats"]["dailyCredits"]
    _set(gw, serverDailyCreditCap=used + 3)
    key = gw.create_key(10)
    for _ in range(3):
        assert "result" in _echo(gw, key)
    error = _echo(gw, key)["error"]
    assert error["data"]["reason"] == "spend_cap_exceeded" and "server_daily_credit_cap" in error["message"]
    assert gw.balance(key) == 7
    stats = _view(gw)["serverStats"]
    assert stats["dailyCredits"] == used + 3 and stats["dailyCreditCap"] == used + 3


def test_a_per_key_hourly_call_cap_applies_to_each_key_alone(gw: InProcessGateway) -> None:
    _set(gw, hourlyCallLimit=2)
    a, b = gw.create_key(10), gw.create_key(10)
    assert "result" in _echo(gw, a) and "result" in _echo(gw, a)
    error = _echo(gw, a)["error"]
    assert error["data"]["reason"] == "spend_cap_exceeded" and "hourly_call_cap" in error["message"]
    assert "result" in _echo(gw, b)  # another key has its own hour
    assert gw.balance(a) == 8


def test_suspend_then_auto_resume(gw: InProcessGateway) -> None:
    _set(gw, hourlyCallLimit=1, breachAction="suspend", autoResumeAfterSeconds=1)
    key = gw.create_key(10)
    assert "result" in _echo(gw, key)
    assert _echo(gw, key)["error"]["data"]["reason"] == "spend_cap_exceeded"  # the breach
    info = gw.client.get("/keys", headers=gw.admin()).json()
    rows = info if isinstance(info, list) else info.get("keys", info)
    row = next(r for r in rows if r["keyMasked"] == masked(key))
    assert row["suspended"] is True
    assert _echo(gw, key)["error"]["data"]["reason"] == "key_suspended"
    suspended = next(e for e in gw.events("key.suspended") if e["data"]["keyMasked"] == masked(key))
    assert suspended["actor"] == "spend-caps" and suspended["data"]["reason"].startswith("spend_cap: hourly_call_cap")
    listed = _view(gw)["suspended"]
    assert any(s["key"] == masked(key) for s in listed)
    wait_until(
        lambda: any(e["data"]["keyMasked"] == masked(key) for e in gw.events("key.resumed")),
        what="the spend caps' auto-resume",
    )
    resumed = next(e for e in gw.events("key.resumed") if e["data"]["keyMasked"] == masked(key))
    assert resumed["actor"] == "spend-caps" and resumed["data"]["auto"] is True
    assert gw.balance(key) == 9  # one call charged, the refusals free
    assert not any(s["key"] == masked(key) for s in _view(gw)["suspended"])


def test_an_admin_resume_is_not_undone_and_a_manual_suspend_is_not_auto_resumed(gw: InProcessGateway) -> None:
    _set(gw, hourlyCallLimit=1, breachAction="suspend", autoResumeAfterSeconds=1)
    key = gw.create_key(10)
    _echo(gw, key)
    _echo(gw, key)
    assert gw.client.post("/keys/resume", json={"key": key}, headers=gw.admin()).status_code == 200
    resp = gw.client.post("/keys/suspend", json={"key": key, "reason": "abuse review"}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 2.5  # past autoResumeAfterSeconds and two ticks
    wait_until(lambda: time.monotonic() > deadline, what="the resume window to pass")
    assert not any(
        e["actor"] == "spend-caps" and e["data"]["keyMasked"] == masked(key) for e in gw.events("key.resumed")
    )
    assert _echo(gw, key)["error"]["data"]["reason"] == "key_suspended"


def test_changes_are_audited_and_metrics_exported(gw: InProcessGateway) -> None:
    _set(gw, serverDailyCallCap=123456)
    event = gw.events("spend_caps.updated")[-1]
    assert event["data"]["changed"] == ["serverDailyCallCap"] and event["data"]["serverDailyCallCap"] == 123456
    text = gw.client.get("/metrics").text
    assert 'paygate_spend_cap_denials_total{cap="server_daily_call_cap"}' in text
    assert 'paygate_spend_cap_server_daily_used{metric="calls"}' in text


def test_the_day_rolls_over(gw: InProcessGateway) -> None:
    assert gw.rt is not None
    caps = gw.rt.billing.facts.caps
    assert caps is None
    _set(gw, serverDailyCallCap=1)
    caps = gw.rt.billing.facts.caps
    assert caps is not None
    now = time.time()
    tomorrow = (now // DAY + 1) * DAY + 1
    facts = caps.facts("nobody", tomorrow)
    assert facts is not None and facts.server_calls == 0


def _audit(gw: InProcessGateway, types: str) -> list[dict[str, Any]]:
    resp = gw.client.get("/audit", params={"types": types, "limit": 1000}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return list(resp.json()["events"])


def test_settings_survive_a_restart_and_win_over_the_config_file(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    config = write_config(tmp_path, {"spendCaps": {"serverDailyCallCap": 50, "breachAction": "suspend"}})
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config)
    admin = "admin-key-for-spend-cap-tests"
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as first:
        view = _view(first)
        assert view["serverDailyCallCap"] == 50 and view["breachAction"] == "suspend"
        key = first.create_key(10)
        _set(first, serverDailyCallCap=2, hourlyCreditLimit=9)
        assert "result" in _echo(first, key) and "result" in _echo(first, key)
    with running_inprocess_gateway(*args, state_file=state, admin_key=admin) as second:
        view = _view(second)
        assert view["serverDailyCallCap"] == 2 and view["hourlyCreditLimit"] == 9
        assert view["serverStats"]["dailyCalls"] == 2  # recounted from the usage log
        assert _echo(second, key)["error"]["data"]["reason"] == "spend_cap_exceeded"
        assert second.balance(key) == 8


def test_concurrent_http_calls_against_a_per_key_cap_of_n_exactly_n_succeed(gw: InProcessGateway) -> None:
    """Forty calls by one key at once over separate connections, against an hourly cap of 7: exactly 7
    run and are charged, every other is refused with the cap's reason before any charge."""
    _set(gw, hourlyCallLimit=7)
    key = gw.create_key(100)
    assert admitted_and_reasons(racing_echo_calls(gw, key)) == (7, {"spend_cap_exceeded"})
    assert gw.balance(key) == 93


def test_a_batch_is_refused_whole_when_it_would_pass_a_cap(gw: InProcessGateway) -> None:
    _set(gw, hourlyCallLimit=2)
    key = gw.create_key(10)
    calls = [{"name": "echo", "arguments": {"text": t}} for t in ("a", "b", "c")]
    error = gw.rpc("tools/call_batch", {"calls": calls}, key=key).json()["error"]
    assert error["data"]["reason"] == "spend_cap_exceeded"
    assert "hourly_call_cap" in error["message"]
    assert gw.balance(key) == 10  # nothing of the batch was charged
    assert "result" in gw.rpc("tools/call_batch", {"calls": calls[:2]}, key=key).json()
    assert gw.balance(key) == 8


def test_a_rotated_key_keeps_its_hours_counts(gw: InProcessGateway) -> None:
    _set(gw, hourlyCallLimit=1)
    key = gw.create_key(10)
    assert "result" in _echo(gw, key)
    resp = gw.client.post("/keys/rotate", json={"key": key}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    new = resp.json()["newKey"]
    assert _echo(gw, new)["error"]["data"]["reason"] == "spend_cap_exceeded"
