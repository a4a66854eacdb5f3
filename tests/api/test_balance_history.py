"""GET /balance/history: a key holder's own credit movements, newest first, bounded and paginated."""

from __future__ import annotations

from typing import Any

from tests.inprocess import InProcessGateway


def history(gw: InProcessGateway, raw: str, query: str = "") -> Any:
    return gw.client.get(f"/balance/history{query}", headers={"X-API-Key": raw})


def topup(gw: InProcessGateway, raw: str, credits: int) -> None:
    assert gw.client.post("/topup", json={"key": raw, "credits": credits}, headers=gw.admin()).status_code == 200


def test_history_lists_the_keys_own_movements_newest_first_with_velocity(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    topup(gw, raw, 5)
    gw.call_tool("add", {"a": 1, "b": 2}, raw)
    resp = history(gw, raw)
    assert resp.status_code == 200
    body = resp.json()
    assert raw not in resp.text and body["key"] == f"{raw[:7]}…{raw[-4:]}"
    assert [(e["type"], e["amount"], e["balanceBefore"], e["balanceAfter"]) for e in body["entries"]] == [
        ("deduction", -1, 15, 14),
        ("topup", 5, 10, 15),
        ("initial", 10, 0, 10),
    ]
    assert all(e["timestamp"].endswith("Z") for e in body["entries"])
    assert body["total"] == 3 and body["nextBefore"] is None
    assert body["velocity"]["windowHours"] == 24 and body["velocity"]["dataPoints"] == 1
    bearer = gw.client.get("/balance/history", headers={"Authorization": f"Bearer {raw}"})
    assert bearer.json()["entries"] == body["entries"]


def test_history_filters_by_type_and_since(gw: InProcessGateway) -> None:
    raw = gw.create_key(10)
    topup(gw, raw, 5)
    gw.call_tool("add", {"a": 1, "b": 2}, raw)
    body = history(gw, raw, "?type=topup").json()
    assert [e["type"] for e in body["entries"]] == ["topup"] and body["total"] == 3
    assert history(gw, raw, "?since=2999-01-01T00:00:00Z").json()["entries"] == []
    assert len(history(gw, raw, "?since=2000-01-01T00:00:00Z").json()["entries"]) == 3


def test_history_pages_with_limit_and_next_before(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    for n in range(1, 8):
        topup(gw, raw, n)
    seen: list[int] = []
    query = "?limit=3"
    for _ in range(5):
        body = history(gw, raw, query).json()
        assert len(body["entries"]) <= 3
        seen += [e["amount"] for e in body["entries"]]
        if body["nextBefore"] is None:
            break
        query = f"?limit=3&before={body['nextBefore']}"
    assert seen == [7, 6, 5, 4, 3, 2, 1, 1]


def test_history_answers_at_most_100_entries(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    for _ in range(104):
        topup(gw, raw, 1)
    body = history(gw, raw, "?limit=100").json()
    assert len(body["entries"]) == 100 and body["total"] == 105 and body["nextBefore"] is not None
    assert len(history(gw, raw).json()["entries"]) == 50  # the default
    assert history(gw, raw, "?limit=101").status_code == 400


def test_history_needs_a_live_key_and_shows_only_that_keys_movements(gw: InProcessGateway) -> None:
    mine, theirs = gw.create_key(10), gw.create_key(20)
    topup(gw, theirs, 7)
    assert [e["amount"] for e in history(gw, mine).json()["entries"]] == [10]
    assert gw.client.get("/balance/history").status_code == 401
    assert history(gw, "pg_" + "0" * 48).status_code == 401
    assert gw.client.get("/balance/history", headers=gw.admin()).status_code == 401  # not an API key
    assert gw.client.post("/keys/revoke", json={"key": mine}, headers=gw.admin()).status_code == 200
    assert history(gw, mine).status_code == 401


def test_history_rejects_bad_parameters(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    for query in ("limit=0", "limit=abc", "since=yesterday", "type=Top Up", "before=0", "before=x"):
        resp = history(gw, raw, f"?{query}")
        assert resp.status_code == 400, query
        assert "error" in resp.json()
