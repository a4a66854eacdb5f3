"""GET/POST/DELETE /balance/alerts: a key holder's low-balance alert, and `key.balance_low` once per crossing."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.inprocess import InProcessGateway


def alerts(gw: InProcessGateway, raw: str, method: str = "GET", body: Any = None) -> httpx.Response:
    return gw.client.request(method, "/balance/alerts", json=body, headers={"X-API-Key": raw})


def flush(gw: InProcessGateway) -> None:
    """Deliver what the bus holds for its deferred subscribers now (they would run 20 ms later)."""
    assert gw.rt is not None
    gw.call_in_loop(gw.rt.events.flush)


def fired(gw: InProcessGateway, raw: str) -> list[dict[str, Any]]:
    mask = f"{raw[:7]}…{raw[-4:]}"
    return [e["data"] for e in gw.events("key.balance_low") if e["data"]["keyMasked"] == mask]


def test_an_alert_is_set_read_and_removed_by_its_key(gw: InProcessGateway) -> None:
    raw = gw.create_key(40)
    assert alerts(gw, raw).json() == {"configured": False, "alert": None, "currentCredits": 40}
    resp = alerts(gw, raw, "POST", {"lowCreditThreshold": 25})
    assert resp.status_code == 200
    alert = resp.json()["alert"]
    assert resp.json()["configured"] is True
    assert alert["lowCreditThreshold"] == 25 and alert["enabled"] is True and alert["webhookUrl"] is None
    assert alert["createdAt"].endswith("Z") and alert["lastTriggeredAt"] is None
    assert alerts(gw, raw).json() == {"configured": True, "alert": alert, "currentCredits": 40}
    assert alerts(gw, raw, "POST", {}).json()["alert"]["lowCreditThreshold"] == 10  # the reference's default
    assert alerts(gw, raw, "DELETE").json() == {"configured": False, "message": "Alert removed"}
    assert alerts(gw, raw).json()["configured"] is False
    assert alerts(gw, raw, "DELETE").status_code == 200  # removing nothing is fine
    alerts(gw, raw, "POST", {"lowCreditThreshold": 5})
    assert alerts(gw, raw, "POST", {"lowCreditThreshold": 5, "enabled": False}).json() == {
        "configured": False,
        "message": "Alert disabled",
    }
    assert alerts(gw, raw).json()["configured"] is False


def test_bad_input_is_a_400_and_changes_nothing(gw: InProcessGateway) -> None:
    raw = gw.create_key(40)
    before = alerts(gw, raw, "POST", {"lowCreditThreshold": 7}).json()["alert"]
    for body in (
        {"lowCreditThreshold": -1},
        {"lowCreditThreshold": 1_000_001},
        {"lowCreditThreshold": "7"},
        {"lowCreditThreshold": 2.5},
        {"lowCreditThreshold": True},
        {"lowCreditThreshold": 5, "webhookUrl": "https://example.com/hook"},
        {"lowCreditThreshold": 5, "color": "red"},
        [5],
    ):
        resp = alerts(gw, raw, "POST", body)
        assert resp.status_code == 400, body
        assert "error" in resp.json()
    garbage = gw.client.post(
        "/balance/alerts", content=b"{nope", headers={"X-API-Key": raw, "Content-Type": "application/json"}
    )
    assert garbage.status_code == 400
    assert alerts(gw, raw).json()["alert"] == before


def test_only_a_live_key_reaches_its_own_alert(gw: InProcessGateway) -> None:
    mine, theirs = gw.create_key(40), gw.create_key(40)
    alerts(gw, theirs, "POST", {"lowCreditThreshold": 30})
    assert alerts(gw, mine).json()["configured"] is False  # their alert is not mine
    alerts(gw, mine, "DELETE")
    assert alerts(gw, theirs).json()["configured"] is True  # and mine to delete is not theirs
    for method in ("GET", "POST", "DELETE"):
        body = {"lowCreditThreshold": 1} if method == "POST" else None
        assert gw.client.request(method, "/balance/alerts", json=body).status_code == 401
        assert alerts(gw, "pg_" + "0" * 48, method, body).status_code == 401
        # an unknown caller is refused before its body is judged
        assert alerts(gw, "pg_" + "0" * 48, "POST", {"lowCreditThreshold": 5, "webhookUrl": "x"}).status_code == 401
    assert gw.client.post("/keys/revoke", json={"key": theirs}, headers=gw.admin()).status_code == 200
    assert alerts(gw, theirs).status_code == 401


def test_the_alert_fires_once_per_crossing_not_once_per_call(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    alerts(gw, raw, "POST", {"lowCreditThreshold": 3})
    gw.call_tool("add", {"a": 1, "b": 1}, raw)  # 4: above
    flush(gw)
    assert fired(gw, raw) == []
    for _ in range(3):  # 3, 2, 1: one crossing
        gw.call_tool("add", {"a": 1, "b": 1}, raw)
        flush(gw)
    [event] = fired(gw, raw)
    assert event == {"keyMasked": f"{raw[:7]}…{raw[-4:]}", "name": "test", "credits": 3, "lowCreditThreshold": 3}
    assert alerts(gw, raw).json()["alert"]["lastTriggeredAt"] is not None
    assert gw.client.post("/topup", json={"key": raw, "credits": 9}, headers=gw.admin()).status_code == 200
    gw.call_tool("add", {"a": 1, "b": 1}, raw)  # 9: seen above, re-armed
    flush(gw)
    assert len(fired(gw, raw)) == 1
    for _ in range(6):  # 3: the second crossing
        gw.call_tool("add", {"a": 1, "b": 1}, raw)
        flush(gw)
    assert [e["credits"] for e in fired(gw, raw)] == [3, 3]


def test_a_crossing_without_a_call_is_found_by_the_sweep(gw: InProcessGateway) -> None:
    raw, other = gw.create_key(20), gw.create_key(0)
    alerts(gw, raw, "POST", {"lowCreditThreshold": 10})
    now = time.time() + 1000
    gw.tick(now)
    assert fired(gw, raw) == []
    moved = gw.client.post("/keys/transfer", json={"from": raw, "to": other, "credits": 15}, headers=gw.admin())
    assert moved.status_code == 200, moved.text
    gw.tick(now + 1)  # within the sweep interval: not looked at yet
    assert fired(gw, raw) == []
    gw.tick(now + 10)
    gw.tick(now + 20)
    assert [e["credits"] for e in fired(gw, raw)] == [5]


def test_the_alert_follows_a_rotated_key(gw: InProcessGateway) -> None:
    old = gw.create_key(20)
    alerts(gw, old, "POST", {"lowCreditThreshold": 12})
    new = gw.client.post("/keys/rotate", json={"key": old}, headers=gw.admin()).json()["newKey"]
    assert alerts(gw, new).json()["alert"]["lowCreditThreshold"] == 12
