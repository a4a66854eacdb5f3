"""The request log through the real CLI: GET /requests, /requests/export and /tools/stats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, masked, write_config

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def call(
    gw: InProcessGateway,
    raw: str,
    tool: str = "echo",
    args: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> httpx.Response:
    resp = gw.rpc(
        "tools/call",
        {"name": tool, "arguments": args if args is not None else {"text": "hi"}},
        key=raw,
        headers={"X-Request-Id": request_id} if request_id else None,
    )
    assert resp.status_code == 200, resp.text
    return resp


def requests_of(gw: InProcessGateway, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    resp = gw.client.get("/requests", headers=headers or gw.admin(), params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def test_allowed_and_denied_calls_appear_newest_first_with_the_callers_request_id(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    ok = call(gw, raw)
    refused = call(gw, raw, request_id="client-chosen-id.1")
    assert "result" in ok.json() and refused.json()["error"]["data"]["reason"] == "insufficient_credits"

    body = requests_of(gw, key=masked(raw))
    assert body["total"] == 2 and body["offset"] == 0 and body["limit"] == 100
    newest, oldest = body["requests"]
    assert newest == {
        "id": newest["id"],
        "timestamp": newest["timestamp"],
        "tool": "echo",
        "key": masked(raw),
        "status": "denied",
        "credits": 0,
        "durationMs": newest["durationMs"],
        "denyReason": "insufficient_credits",
        "requestId": "client-chosen-id.1",
    }
    assert oldest["status"] == "allowed" and oldest["credits"] == 1 and "denyReason" not in oldest
    assert oldest["requestId"] == ok.headers["x-request-id"] and newest["id"] > oldest["id"]
    assert oldest["timestamp"] <= newest["timestamp"] and oldest["timestamp"].endswith("Z")
    assert body["summary"] == {
        "totalAllowed": 1,
        "totalDenied": 1,
        "totalCredits": 1,
        "avgDurationMs": body["summary"]["avgDurationMs"],
    }
    assert raw not in gw.client.get("/requests", headers=gw.admin(), params={"limit": 1000}).text


def test_filters_pagination_and_a_summary_over_every_match(gw: InProcessGateway) -> None:
    raw = gw.create_key(4)
    since = now_iso()
    for i in range(3):
        call(gw, raw, request_id=f"page-{i}")
    call(gw, raw, "add", {"a": 1, "b": 2}, request_id="page-add")
    call(gw, raw, request_id="page-denied")  # no credits left
    until = now_iso()
    mine = masked(raw)

    assert [r["requestId"] for r in requests_of(gw, key=mine)["requests"]] == [
        "page-denied",
        "page-add",
        "page-2",
        "page-1",
        "page-0",
    ]
    assert requests_of(gw, key=mine[:7])["total"] >= 5  # partial match on the masked key
    assert requests_of(gw, key=mine.replace("…", "..."))["total"] == 5
    assert [r["requestId"] for r in requests_of(gw, key=mine, tool="add")["requests"]] == ["page-add"]
    assert requests_of(gw, key=mine, tool="ad")["total"] == 0  # tool is an exact match
    denied = requests_of(gw, key=mine, status="denied")
    assert denied["total"] == 1 and denied["summary"]["totalDenied"] == 1 and denied["summary"]["totalAllowed"] == 0
    window = requests_of(gw, since=since, until=until, status="allowed")
    assert window["total"] == 4 and window["summary"]["totalCredits"] == 4
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")  # no zone: UTC
    assert requests_of(gw, since=future)["total"] == 0

    page = requests_of(gw, key=mine, limit=2, offset=1)
    assert [r["requestId"] for r in page["requests"]] == ["page-add", "page-2"]
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert page["summary"] == {
        "totalAllowed": 4,
        "totalDenied": 1,
        "totalCredits": 4,
        "avgDurationMs": page["summary"]["avgDurationMs"],
    }
    assert requests_of(gw, key=mine, offset=5)["requests"] == []


def test_export_holds_every_match_oldest_first_as_json_or_formula_safe_csv(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    for i in range(3):
        call(gw, raw, request_id=f"=export+{i}")
    resp = gw.client.get("/requests/export", headers=gw.admin(), params={"key": masked(raw)})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    assert resp.headers["content-disposition"].startswith('attachment; filename="paygate-requests-')
    body = resp.json()
    assert body["count"] == 3 and [r["requestId"] for r in body["requests"]] == ["=export+0", "=export+1", "=export+2"]
    assert body["exportedAt"].endswith("Z")

    resp = gw.client.get("/requests/export", headers=gw.admin(), params={"format": "csv", "key": masked(raw)})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert list(rows[0]) == [
        "id",
        "timestamp",
        "tool",
        "key",
        "status",
        "credits",
        "durationMs",
        "denyReason",
        "requestId",
    ]
    assert [r["requestId"] for r in rows] == ["'=export+0", "'=export+1", "'=export+2"]
    assert rows[0]["key"] == masked(raw) and rows[0]["status"] == "allowed" and rows[0]["denyReason"] == ""
    assert all(not cell.startswith(FORMULA_STARTS) for r in rows for cell in r.values())
    assert int(rows[0]["id"]) == body["requests"][0]["id"]


def test_export_is_not_paged(gw: InProcessGateway) -> None:
    raw = gw.create_key(0)
    for _ in range(105):
        call(gw, raw)
    assert requests_of(gw, key=masked(raw))["total"] == 105
    assert gw.client.get("/requests/export", headers=gw.admin(), params={"key": masked(raw)}).json()["count"] == 105


def test_tool_stats_overview_and_one_tools_detail(gw: InProcessGateway) -> None:
    since = now_iso()
    rich, poor = gw.create_key(100), gw.create_key(1)
    for _ in range(3):
        call(gw, rich)
    call(gw, rich, "add", {"a": 1, "b": 1})
    call(gw, poor)
    call(gw, poor)  # denied: insufficient credits
    call(gw, "pg_not_a_real_key_000000000000")  # denied: invalid key, no consumer to name

    view = gw.client.get("/tools/stats", headers=gw.admin(), params={"since": since}).json()
    assert view["totalTools"] == 2 and view["totalCalls"] == 7
    echo, add = view["tools"]
    assert echo == {
        "tool": "echo",
        "totalCalls": 6,
        "allowed": 4,
        "denied": 2,
        "successRate": 66.7,
        "totalCredits": 4,
        "avgDurationMs": echo["avgDurationMs"],
    }
    assert add["tool"] == "add" and add["totalCalls"] == 1 and add["successRate"] == 100.0

    detail = gw.client.get("/tools/stats", headers=gw.admin(), params={"since": since, "tool": "echo"}).json()
    assert {k: detail[k] for k in ("tool", "totalCalls", "allowed", "denied", "totalCredits")} == {
        "tool": "echo",
        "totalCalls": 6,
        "allowed": 4,
        "denied": 2,
        "totalCredits": 4,
    }
    assert detail["p95DurationMs"] >= detail["avgDurationMs"] > 0
    assert detail["denyReasons"] == {"insufficient_credits": 1, "invalid_api_key": 1}
    assert detail["topConsumers"] == [
        {"key": masked(rich), "calls": 3, "credits": 3},
        {"key": masked(poor), "calls": 2, "credits": 1},
    ]

    unknown = gw.client.get("/tools/stats", headers=gw.admin(), params={"tool": "no_such_tool"})
    assert unknown.status_code == 200
    assert unknown.json()["totalCalls"] == 0 and unknown.json()["topConsumers"] == []
    overall = gw.client.get("/tools/stats", headers=gw.admin()).json()
    assert overall["totalCalls"] >= 7 and overall["tools"][0]["totalCalls"] >= overall["tools"][-1]["totalCalls"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/requests", {"limit": "0"}),
        ("/requests", {"limit": "1001"}),
        ("/requests", {"offset": "-1"}),
        ("/requests", {"offset": "x"}),
        ("/requests", {"status": "maybe"}),
        ("/requests", {"since": "yesterday"}),
        ("/requests", {"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}),
        ("/requests", {"key": ""}),
        ("/requests", {"tool": "x" * 201}),
        ("/requests/export", {"format": "xml"}),
        ("/requests/export", {"until": "later"}),
        ("/requests/export", {"status": "ok"}),
        ("/tools/stats", {"since": "nope"}),
        ("/tools/stats", {"tool": ""}),
    ],
)
def test_bad_query_parameters_are_400_and_change_nothing(
    gw: InProcessGateway, path: str, params: dict[str, str]
) -> None:
    before = requests_of(gw, limit=1000)
    resp = gw.client.get(path, headers=gw.admin(), params=params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request")
    assert requests_of(gw, limit=1000) == before


def test_admins_of_any_role_may_read_and_others_may_not(gw: InProcessGateway) -> None:
    viewer = {
        "X-Admin-Key": gw.client.post(
            "/admin/keys", headers=gw.admin(), json={"name": "watcher", "role": "viewer"}
        ).json()["key"]
    }
    raw = gw.create_key(5)
    for path in ("/requests", "/requests/export", "/tools/stats"):
        assert gw.client.get(path, headers=viewer).status_code == 200, path
        assert gw.client.get(path).status_code == 401, path
        assert gw.client.get(path, headers={"X-Admin-Key": "wrong"}).status_code == 401, path
        assert gw.client.get(path, headers={"X-API-Key": raw}).status_code == 401, path
    for method in ("POST", "DELETE"):
        assert gw.client.request(method, "/requests", headers=gw.admin()).status_code == 405


def test_the_log_survives_a_restart_when_calls_are_audited(tmp_path: Path) -> None:
    state_file = str(tmp_path / "s.db")
    admin = "admin_requests_restart_0123456789abcdef"
    config = write_config(tmp_path, {"auditGateEvents": True})
    with running_inprocess_gateway(
        "--server", ECHO_COMMAND, "--config", config, state_file=state_file, admin_key=admin
    ) as gw:
        raw = gw.create_key(1)
        call(gw, raw, request_id="before-restart-1")
        call(gw, raw, request_id="before-restart-2")
        first = requests_of(gw, key=masked(raw))
        assert first["total"] == 2
    with running_inprocess_gateway(
        "--server", ECHO_COMMAND, "--config", config, state_file=state_file, admin_key=admin
    ) as gw:
        assert requests_of(gw, key=masked(raw)) == first
        gw.client.post("/topup", headers=gw.admin(), json={"key": raw, "credits": 1})
        call(gw, raw, request_id="after-restart")
        again = requests_of(gw, key=masked(raw))
        assert [r["requestId"] for r in again["requests"]] == ["after-restart", "before-restart-2", "before-restart-1"]
        assert again["requests"][0]["id"] > again["requests"][1]["id"]
        stats = gw.client.get("/tools/stats", headers=gw.admin(), params={"tool": "echo"}).json()
        assert stats["totalCalls"] == 3 and stats["denyReasons"] == {"insufficient_credits": 1}


def test_without_audited_calls_the_log_starts_empty_after_a_restart(tmp_path: Path) -> None:
    state_file = str(tmp_path / "s.db")
    admin = "admin_requests_restart_0123456789abcdef"
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state_file, admin_key=admin) as gw:
        raw = gw.create_key(1)
        call(gw, raw, request_id="kept-in-memory")
        assert requests_of(gw, key=masked(raw))["total"] == 1
    with running_inprocess_gateway("--server", ECHO_COMMAND, state_file=state_file, admin_key=admin) as gw:
        assert requests_of(gw, key=masked(raw))["total"] == 0
        usage = gw.client.get("/usage", headers=gw.admin()).json()  # the durable record of the call
        assert any(e.get("requestId") == "kept-in-memory" for e in usage["events"]), usage


def test_the_ring_keeps_request_log_size_entries_and_zero_turns_it_off(tmp_path: Path) -> None:
    for size, expected in ((2, ["c-3", "c-2"]), (0, [])):
        config = write_config(tmp_path, {"requestLogSize": size})
        with running_inprocess_gateway("--server", ECHO_COMMAND, "--config", config) as gw:
            raw = gw.create_key(10)
            for i in range(4):
                call(gw, raw, request_id=f"c-{i}")
            body = requests_of(gw)
            assert [r["requestId"] for r in body["requests"]] == expected and body["total"] == len(expected)
            assert gw.client.get("/tools/stats", headers=gw.admin()).json()["totalCalls"] == len(expected)
            assert json.loads(gw.client.get("/requests/export", headers=gw.admin()).text)["count"] == len(expected)
