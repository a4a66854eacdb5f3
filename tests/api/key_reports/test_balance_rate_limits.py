"""GET /balance/rate-limit-status: a key holder's own rate windows, the admin report's for one's own key."""

from __future__ import annotations

from tests.api.key_reports.support import ADD_LIMIT, GLOBAL_LIMIT, echo, report
from tests.inprocess import InProcessGateway


def own(gw: InProcessGateway, raw: str, header: str = "X-API-Key") -> dict[str, object]:
    value = raw if header == "X-API-Key" else f"Bearer {raw}"
    resp = gw.client.get("/balance/rate-limit-status", headers={header: value})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_a_key_holder_sees_its_global_and_per_tool_windows(gw: InProcessGateway) -> None:
    raw = gw.create_key(100, name="holder")
    echo(gw, raw, 2)
    assert "result" in gw.call_tool("add", {"a": 1, "b": 2}, raw)
    status = own(gw, raw)
    assert status["key"] == f"{raw[:7]}…{raw[-4:]}" and status["name"] == "holder" and raw not in str(status)
    g = status["global"]
    assert isinstance(g, dict) and (g["limit"], g["used"], g["remaining"]) == (GLOBAL_LIMIT, 3, GLOBAL_LIMIT - 3)
    per_tool = status["perTool"]
    assert isinstance(per_tool, dict) and (per_tool["add"]["used"], per_tool["add"]["limit"]) == (1, ADD_LIMIT)
    # the same windows the admin sees, and looking used no slot
    admin = report(gw, "/keys/rate-limit-status", raw)
    assert "alias" not in status and {k: v for k, v in admin.items() if k not in ("global", "alias")} == {
        k: v for k, v in status.items() if k != "global"
    }
    assert own(gw, raw, "Authorization")["global"]["used"] == 3  # type: ignore[index]


def test_no_key_an_unknown_key_or_an_admin_key_is_401(gw: InProcessGateway) -> None:
    assert gw.client.get("/balance/rate-limit-status").status_code == 401
    assert gw.client.get("/balance/rate-limit-status", headers={"X-API-Key": "pg_" + "0" * 48}).status_code == 401
    assert gw.client.get("/balance/rate-limit-status", headers=gw.admin()).status_code == 401
    revoked = gw.create_key(5)
    gw.client.post("/keys/revoke", json={"key": revoked}, headers=gw.admin()).raise_for_status()
    assert gw.client.get("/balance/rate-limit-status", headers={"X-API-Key": revoked}).status_code == 401
