"""What holds for every per-key report: aliases and no raw key shown, 404 and 400, suspended, revoked and
expired keys, admin roles, no events, and the history surviving a restart."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.api.key_reports.support import REPORTS, echo, get, post, report, with_alias
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, wait_until

# --- every report ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", REPORTS)
def test_a_report_accepts_the_alias_and_never_shows_the_raw_key_or_its_hash(gw: InProcessGateway, path: str) -> None:
    raw = gw.create_key(50, name="alias-user")
    echo(gw, raw)
    alias = with_alias(gw, raw)
    by_alias = get(gw, path, key=alias)
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json()["key"] == f"{raw[:7]}…{raw[-4:]}"
    assert by_alias.json()["alias"] == alias
    for text in (by_alias.text, get(gw, path, key=raw).text):
        assert raw not in text and raw[7:-4] not in text
        assert hashlib.sha256(raw.encode()).hexdigest() not in text


@pytest.mark.parametrize("path", REPORTS)
def test_a_report_on_an_unknown_key_is_404(gw: InProcessGateway, path: str) -> None:
    resp = get(gw, path, key="pg_" + "0" * 48)
    # the body names the error and the request it answers, nothing else
    assert resp.status_code == 404
    assert resp.json() == {"error": "API key not found", "requestId": resp.headers["x-request-id"]}


@pytest.mark.parametrize("path", REPORTS)
@pytest.mark.parametrize("params", [{}, {"key": ""}, {"key": "x" * 201}, {"key": "k", "bogus": "1"}])
def test_a_report_with_a_missing_or_bad_parameter_is_400(
    gw: InProcessGateway, path: str, params: dict[str, Any]
) -> None:
    resp = get(gw, path, **params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request:")


@pytest.mark.parametrize("path", REPORTS)
def test_a_report_works_on_suspended_and_revoked_keys(gw: InProcessGateway, path: str) -> None:
    suspended, revoked = gw.create_key(5, name="s"), gw.create_key(5, name="r")
    post(gw, "/keys/suspend", {"key": suspended})
    post(gw, "/keys/revoke", {"key": revoked})
    assert get(gw, path, key=suspended).status_code == 200
    assert get(gw, path, key=revoked).status_code == 200


@pytest.mark.parametrize("path", REPORTS)
def test_a_report_finds_a_revoked_key_by_its_alias(gw: InProcessGateway, path: str) -> None:
    revoked = gw.create_key(5, name="gone")
    alias = f"gone-{uuid.uuid4().hex[:8]}"
    post(gw, "/keys/alias", {"key": revoked, "alias": alias})
    post(gw, "/keys/revoke", {"key": revoked})
    by_alias, by_key = get(gw, path, key=alias), get(gw, path, key=revoked)
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json().keys() == by_key.json().keys()


def test_reports_need_an_admin_key_and_a_viewer_may_read_them(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    viewer = post(gw, "/admin/keys", {"name": f"v-{uuid.uuid4().hex[:6]}", "role": "viewer"}).json()["key"]
    assert gw.client.get("/keys/health", params={"key": raw}).status_code == 401
    for path in REPORTS:
        assert gw.client.get(path, params={"key": raw}, headers={"X-Admin-Key": viewer}).status_code == 200, path


def test_reading_reports_publishes_no_events(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    before = len(gw.events())
    for path in REPORTS:
        get(gw, path, key=raw)
    assert len(gw.events()) == before


# --- persistence --------------------------------------------------------------------------------


def test_usage_history_and_activity_survive_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as first:
        raw = first.create_key(10, name="durable")
        first.client.post("/topup", json={"key": raw, "credits": 5}, headers=first.admin())
        echo(first, raw, 2)
        before = {p: report(first, p, raw) for p in ("/keys/usage", "/keys/credit-history")}
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state) as second:
        after = {p: report(second, p, raw) for p in ("/keys/usage", "/keys/credit-history")}
        assert after == before
        kinds = {(e["source"], e["type"]) for e in report(second, "/keys/activity", raw)["events"]}
        assert {("usage", "tool.call"), ("ledger", "credits.topup"), ("ledger", "credits.initial")} <= kinds
        wait_until(lambda: report(second, "/keys/dashboard", raw)["usage"]["totalCalls"] == 2, what="dashboard")


def test_every_report_works_on_an_expired_key(gw: InProcessGateway) -> None:
    raw = gw.create_key(5, name="expired", expiresIn=1)
    wait_until(lambda: report(gw, "/keys/health", raw)["keyStatus"] == "expired", what="the key to expire")
    for path in REPORTS:
        assert get(gw, path, key=raw).status_code == 200, path
    health = report(gw, "/keys/health", raw)
    assert (health["score"], health["issues"][0]) == (0, "Key has expired")
    assert report(gw, "/tools/available", raw)["status"] == "expired"
