"""The report engine through one report (system-overview): auth, the window, CSV, bad parameters."""

from __future__ import annotations

import csv
import io
import time

from paygate.store.rollups import CallFact
from tests.api.analytics.support import calls, get, key_hash, new_key, record, report
from tests.inprocess import InProcessGateway

PATH = "/admin/system-overview"


def test_counts_real_calls_and_keys(gw: InProcessGateway) -> None:
    before = report(gw, PATH)
    key = new_key(gw, 100)
    calls(gw, key, 3)
    after = report(gw, PATH)
    assert after["activity"]["totalCalls"] == before["activity"]["totalCalls"] + 3
    assert after["keys"]["total"] == before["keys"]["total"] + 1
    assert after["credits"]["totalSpent"] == before["credits"]["totalSpent"] + 3
    assert after["activity"]["uniqueTools"] >= 1
    assert "generatedAt" in after


def test_window_counts_whole_hours(gw: InProcessGateway) -> None:
    key = new_key(gw, 10)
    # noon (UTC) 400 days ago: the hour after it is the same day whatever the hour the suite runs at
    # (at 23:xx, "now less 400 days, plus an hour" fell on the next day and since came after until)
    then = int(time.time()) - 400 * 86400
    long_ago = float(then - then % 86400 + 12 * 3600)
    record(gw, [CallFact(long_ago, key_hash(key), "old_tool", "default", "", credits=5)])
    day = time.strftime("%Y-%m-%d", time.gmtime(long_ago))
    hour = time.strftime("%Y-%m-%dT%H:59:59Z", time.gmtime(long_ago))
    inside = report(gw, PATH, since=day, until=hour)
    assert inside["activity"] == {"totalCalls": 1, "uniqueTools": 1}
    assert inside["since"] == f"{day}T00:00:00.000Z"
    after = report(
        gw, PATH, since=time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(long_ago + 3600)), until=day + "T23:59:59Z"
    )
    assert after["activity"]["totalCalls"] == 0


def test_csv_export(gw: InProcessGateway) -> None:
    resp = get(gw, PATH, format="csv")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert len(rows) == 1 and int(rows[0]["keys.total"]) >= 0


def test_bad_parameters_are_400(gw: InProcessGateway) -> None:
    bad = (
        {"since": "yesterday"},
        {"since": "2026-02-02", "until": "2026-02-01"},
        {"bogus": "1"},
        {"format": "xml"},
        {"since": "1900-01-01"},
    )
    for params in bad:
        resp = get(gw, PATH, **params)
        assert resp.status_code == 400, (params, resp.status_code, resp.text)


def test_needs_an_admin_key(gw: InProcessGateway) -> None:
    assert gw.client.get(PATH).status_code == 401
    assert gw.client.get(PATH, headers={"X-Admin-Key": "wrong"}).status_code == 401
