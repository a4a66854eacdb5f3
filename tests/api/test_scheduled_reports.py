"""Scheduled reports (docs/scheduled-reports.md): a report for the last complete UTC period, built by the
analytics reports, POSTed signed to a real local receiver when due (the clock advanced through the
tickers' `now`, never slept), once per period across a restart, caught up after downtime; generate on
demand; validation, roles, masking and audit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from paygate.webhooks import verify_signature
from paygate.webhooks.report_periods import last_complete, next_start, period_start
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, wait_until, write_config
from tests.webhook_receiver import Receiver, receiving

PATH = "/admin/scheduled-reports"
SECRET = "whsec-scheduled-report-secret-0123456789"
DAY = 86_400


def gateway(tmp_path: Path, receiver: Receiver, state: str = ":memory:") -> Any:
    config = write_config(
        tmp_path, {"webhookUrl": receiver.url("/main"), "webhookSecret": SECRET, "webhookAllowPrivate": True}
    )
    return running_inprocess_gateway(
        "--server",
        ECHO_COMMAND,
        "--rate-limit",
        "0",
        "--config",
        config,
        state_file=state,
        admin_key="admin-key-scheduled-reports-01",
    )


def reports(receiver: Receiver, path: str = "/reports") -> list[dict[str, Any]]:
    return [r.json() for r in receiver.ok(path)]


def create(gw: InProcessGateway, **fields: Any) -> dict[str, Any]:
    resp = gw.client.post(PATH, json=fields, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_a_due_report_is_delivered_signed_once_per_period_across_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    with receiving() as receiver:
        with gateway(tmp_path, receiver, state) as gw:
            key = gw.create_key(100)
            for _ in range(3):
                assert "result" in gw.call_tool("echo", {"text": "x"}, key)
            url = receiver.url("/reports")
            sched = create(gw, name="daily usage", type="usage", frequency="daily", url=url)
            assert sched["url"] == f"http://127.0.0.1:{receiver.port}/***" and sched["lastRun"] is None
            now = time.time()
            gw.tick(now)  # the creation day has not ended: nothing is due
            assert reports(receiver) == []
            tomorrow = next_start("daily", period_start("daily", now)) + 60
            gw.tick(tomorrow)
            wait_until(lambda: len(reports(receiver)) == 1, 10, "the first report")
            gw.tick(tomorrow + 5)  # the same period is never sent twice
            got = receiver.ok("/reports")[0]
            assert verify_signature(got.body, got.headers.get("x-paygate-signature"), SECRET)
            body = got.json()
            assert body["type"] == "report.generated" and body["schedule"]["id"] == sched["id"]
            report = body["report"]
            assert report["periodStart"] == time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(now))
            summary = report["data"]["summary"]
            assert summary["totalCalls"] == 3 and summary["totalCredits"] == 3  # the analytics `costs` report
            assert report["periodEnd"] == time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(tomorrow))
            view = gw.client.get(PATH, params={"id": sched["id"]}, headers=gw.admin()).json()
            wait_until(lambda: _status(gw, sched["id"]) == "delivered", 10, "the run recorded")
            assert view["runs"][0]["attempts"] == 1
            assert gw.events("scheduled_report.delivered")
        with gateway(tmp_path, receiver, state) as gw:
            gw.tick(tomorrow + 10)  # after a restart: the delivered period is not repeated
            gw.tick(tomorrow + 2 * DAY)  # two more days ended while it was down: both are sent, in order
            wait_until(lambda: len(reports(receiver)) == 3, 10, "the caught-up reports")
            starts = [r["report"]["periodStart"] for r in reports(receiver)]
            assert len(set(starts)) == 3 and starts == sorted(starts)
        assert len(reports(receiver)) == 3
        # the main webhook got the audit events (batched as usual), never a report addressed elsewhere
        assert all(r.get("type") != "report.generated" for r in reports(receiver, "/main"))


def _status(gw: InProcessGateway, sid: str) -> str | None:
    return gw.client.get(PATH, params={"id": sid}, headers=gw.admin()).json()["lastStatus"]


def test_a_failed_delivery_is_retried_and_generate_sends_now(tmp_path: Path) -> None:
    with receiving() as receiver, gateway(tmp_path, receiver) as gw:
        sched = create(gw, name="sec", type="security", frequency="weekly")  # to the main webhookUrl
        receiver.fail_next(1)
        now = time.time()
        due = next_start("weekly", period_start("weekly", now)) + 1
        gw.tick(due)
        wait_until(lambda: _status(gw, sched["id"]) == "failed", 10, "the failed run")
        gw.tick(due + 30)  # not yet: the retry waits a minute
        assert _status(gw, sched["id"]) == "failed"
        gw.tick(due + 3600)
        wait_until(lambda: _status(gw, sched["id"]) == "delivered", 10, "the retried run")
        delivered = [r for r in reports(receiver, "/main") if r.get("type") == "report.generated"]
        assert len(delivered) == 1 and delivered[0]["report"]["type"] == "security"
        # generate: on demand, the period containing `at`
        resp = gw.client.post(PATH, json={"action": "generate", "id": sched["id"]}, headers=gw.admin())
        assert resp.status_code == 200 and resp.json()["delivered"] is True, resp.text
        start = last_complete("weekly", time.time())
        assert resp.json()["periodStart"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))


def test_validation_roles_and_delete(tmp_path: Path) -> None:
    with receiving() as receiver, gateway(tmp_path, receiver) as gw:
        bad = [
            ({"name": "x", "type": "usage", "frequency": "hourly"}, "frequency"),
            ({"name": "x", "type": "usage", "frequency": "daily", "filters": {"tool": "echo"}}, "filters by"),
            (
                {"name": "x", "type": "usage", "frequency": "daily", "url": "ftp://example.com/x"},
                "url must start with http",
            ),
            ({"type": "usage", "frequency": "daily"}, "name is required"),
            ({"name": "x", "type": "usage", "frequency": "daily", "at": "2026-01-01"}, "generate"),
            ({"action": "generate"}, "generate takes id"),
        ]
        for body, words in bad:
            resp = gw.client.post(PATH, json=body, headers=gw.admin())
            assert resp.status_code == 400 and words in resp.text, (body, resp.text)
        assert gw.client.get(PATH, headers=gw.admin()).json()["count"] == 0
        sched = create(gw, name="c", type="compliance", frequency="monthly", filters={"namespace": "default"})
        assert sched["filters"] == {"namespace": "default"} and sched["enabled"] is True
        changed = create(gw, id=sched["id"], enabled=False)
        assert changed["enabled"] is False and changed["nextDueAt"] is None
        resp = gw.client.post("/admin/keys", json={"name": "v", "role": "viewer"}, headers=gw.admin())
        viewer = {"X-Admin-Key": resp.json()["key"]}
        assert gw.client.get(PATH, headers=viewer).status_code == 200
        assert gw.client.post(PATH, json={"name": "y"}, headers=viewer).status_code == 403
        assert gw.client.delete(PATH, params={"id": sched["id"]}, headers=viewer).status_code == 403
        assert gw.client.delete(PATH, params={"id": sched["id"]}, headers=gw.admin()).json() == {"deleted": sched["id"]}
        assert gw.client.delete(PATH, params={"id": sched["id"]}, headers=gw.admin()).status_code == 404
        assert [e["type"] for e in gw.events() if e["type"].startswith("scheduled_report.")] == [
            "scheduled_report.created",
            "scheduled_report.updated",
            "scheduled_report.deleted",
        ]
        assert "paygate_scheduled_reports 0.0" in gw.client.get("/metrics").text
