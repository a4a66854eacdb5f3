"""The reference's inventory gauges on /metrics: templates, teams, admin keys, groups, pending alerts."""

from __future__ import annotations

import re

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

ADMIN = "admin_inventory_metrics_key"
GAUGES = (
    "paygate_templates_total",
    "paygate_active_teams_total",
    "paygate_admin_keys_total",
    "paygate_groups_total",
    "paygate_pending_alerts_total",
)


def gauges(gw: InProcessGateway) -> dict[str, float]:
    text = gw.client.get("/metrics").text
    out = {}
    for name in GAUGES:
        assert f"# TYPE {name} gauge" in text, name
        match = re.search(rf"^{name} (\S+)$", text, re.M)
        assert match is not None, name
        out[name] = float(match.group(1))
    return out


def test_inventory_gauges_follow_what_the_gateway_holds() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, admin_key=ADMIN) as gw:
        admin = {"X-Admin-Key": ADMIN}
        assert gauges(gw) == dict.fromkeys(GAUGES, 0.0) | {"paygate_admin_keys_total": 1.0}

        def post(path: str, body: object) -> dict[str, object]:
            resp = gw.client.post(path, json=body, headers=admin)
            assert resp.status_code in (200, 201), resp.text
            return dict(resp.json())

        post("/keys/templates", {"name": "basic", "credits": 5})
        post("/keys/templates", {"name": "pro", "credits": 50})
        team = post("/teams", {"name": "a"})
        post("/teams", {"name": "b"})
        post("/groups", {"name": "g"})
        viewer = post("/admin/keys", {"name": "v", "role": "viewer"})
        post("/admin/keys", {"name": "w", "role": "viewer"})
        post("/admin/keys/revoke", {"key": viewer["key"]})
        post("/alerts", {"rules": [{"type": "credits_low", "threshold": 50}]})
        raw = gw.create_key(10)
        gw.call_tool("add", {"a": 1, "b": 1}, raw)
        assert gw.rt is not None
        gw.call_in_loop(gw.rt.events.flush)
        post("/teams/delete", {"teamId": team["id"]})
        assert gauges(gw) == {
            "paygate_templates_total": 2.0,
            "paygate_active_teams_total": 1.0,
            "paygate_admin_keys_total": 2.0,  # the bootstrap key and the one viewer left
            "paygate_groups_total": 1.0,
            "paygate_pending_alerts_total": 1.0,
        }
        assert gw.client.get("/alerts", headers=admin).status_code == 200  # reading clears the queue
        assert gauges(gw)["paygate_pending_alerts_total"] == 0.0
