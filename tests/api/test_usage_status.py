"""GET /usage (JSON, CSV, since) and GET /status."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

import pytest

from tests.inprocess import InProcessGateway
from tests.support import ECHO_COMMAND, running_gateway


def test_usage_lists_allowed_and_denied_calls_with_masked_keys(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    gw.call_tool("add", {"a": 1, "b": 2}, raw)
    gw.call_tool("add", {"a": 1, "b": 2}, raw)  # denied: no credits left
    resp = gw.client.get("/usage", headers=gw.admin())
    assert resp.status_code == 200
    assert raw not in resp.text
    mine = [e for e in resp.json()["events"] if e["apiKey"] == f"{raw[:7]}…{raw[-4:]}"]
    assert [(e["allowed"], e["creditsCharged"], e["denyReason"]) for e in mine] == [
        (True, 1, None),
        (False, 0, "insufficient_credits"),
    ]


def test_usage_csv_has_a_header_and_one_row_per_event(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    gw.call_tool("echo", {"text": "a,b"}, raw)
    resp = gw.client.get("/usage?format=csv", headers=gw.admin())
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert rows and set(rows[0]) >= {"timestamp", "apiKey", "tool", "creditsCharged", "allowed"}
    assert any(r["tool"] == "echo" and r["apiKey"].startswith(raw[:7]) for r in rows)


def test_usage_since_filters_older_events(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    gw.call_tool("add", {"a": 1, "b": 1}, raw)
    future = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert gw.client.get(f"/usage?since={future}", headers=gw.admin()).json()["count"] == 0
    assert gw.client.get("/usage?since=2000-01-01T00:00:00Z", headers=gw.admin()).json()["count"] >= 1


def test_usage_rejects_bad_parameters(gw: InProcessGateway) -> None:
    for query in ("since=yesterday", "format=xml", "limit=0"):
        assert gw.client.get(f"/usage?{query}", headers=gw.admin()).status_code == 400, query


def test_status_summarises_keys_tools_and_denials(gw: InProcessGateway) -> None:
    raw = gw.create_key(2)
    gw.call_tool("add", {"a": 1, "b": 1}, raw)
    body = gw.client.get("/status", headers=gw.admin()).json()
    assert body["backend"]["ready"] is True and body["backend"]["transport"] == "stdio"
    assert body["activeKeys"] >= 1 and body["perTool"]["add"]["calls"] >= 1
    assert isinstance(body["denyReasons"], dict)


@pytest.mark.e2e  # TZ is read by a process at start
def test_usage_since_without_a_zone_is_utc_whatever_the_server_time_zone() -> None:
    # JST-9: a POSIX zone nine hours east of UTC, so a local reading would look nine hours back
    with running_gateway("--server", ECHO_COMMAND, env={"TZ": "JST-9"}) as gw:
        raw = gw.create_key(3)
        gw.call_tool("add", {"a": 1, "b": 1}, raw)
        in_an_hour = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        an_hour_ago = datetime.fromtimestamp(time.time() - 3600, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        assert gw.client.get(f"/usage?since={in_an_hour}", headers=gw.admin()).json()["count"] == 0
        assert gw.client.get(f"/usage?since={an_hour_ago}", headers=gw.admin()).json()["count"] == 1


def test_usage_csv_quotes_cells_a_spreadsheet_would_run_as_formulas(gw: InProcessGateway) -> None:
    raw = gw.create_key(3, name='=HYPERLINK("http://example.com")')
    gw.call_tool("echo", {"text": "x"}, raw)
    resp = gw.client.get("/usage?format=csv", headers=gw.admin())
    [row] = [r for r in csv.DictReader(io.StringIO(resp.text)) if r["apiKey"].startswith(raw[:7])]
    assert row["keyName"] == '\'=HYPERLINK("http://example.com")'
    assert row["creditsCharged"] == "1"  # numbers stay numbers
