"""Gateway hooks and the admin replay queue through the real CLI: a hook's signed delivery fails at a
real receiver, is retried, exhausted, replayed from /admin/webhook-replay and delivered; the hook and
the replay's outcome survive a restart of the process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paygate.webhooks import verify_signature
from tests.api.hook_support import FAST
from tests.e2e.test_webhooks import get, post
from tests.support import ECHO_COMMAND, Gateway, running_gateway, wait_until, write_config
from tests.webhook_receiver import receiving


def test_a_hook_delivery_exhausted_then_replayed_from_the_admin_queue(tmp_path: Path) -> None:
    config = write_config(tmp_path, FAST)
    args = ("--server", ECHO_COMMAND, "--webhook-allow-private", "--config", config)
    state = str(tmp_path / "state.db")
    with receiving() as receiver:
        with running_gateway(*args, state_file=state) as gw:
            hook = post(
                gw,
                "/admin/gateway-hooks",
                {"name": "ops", "url": receiver.url("/ops"), "events": ["key.*"], "generateSecret": True},
            )
            receiver.fail_next(2, 502)
            gw.create_key(5)

            def replay_view(g: Gateway) -> dict[str, Any]:
                return get(g, "/admin/webhook-replay")

            wait_until(lambda: replay_view(gw)["summary"]["exhausted"] == 1, what="the delivery exhausted")
            [entry] = replay_view(gw)["entries"]
            assert entry["destination"] == hook["id"] and entry["lastStatusCode"] == 502 and entry["attempts"] == 2
            result = post(gw, "/admin/webhook-replay", {"action": "replay", "id": entry["id"]})
            assert result["replayed"] == 1
            wait_until(lambda: replay_view(gw)["summary"]["succeeded"] == 1, what="the replay delivered")
            [delivered] = receiver.ok("/ops")
            assert [e["type"] for e in delivered.admin_events] == ["key.created"]
            assert verify_signature(delivered.body, delivered.headers["x-paygate-signature"], hook["secret"])
            assert "paygate_gateway_hook_deliveries_total" in gw.client.get("/metrics").text
        with running_gateway(*args, state_file=state) as gw:
            [kept] = get(gw, "/admin/gateway-hooks")["hooks"]
            assert kept["id"] == hook["id"] and kept["hasSecret"] is True
            view = get(gw, "/admin/webhook-replay")
            assert view["summary"] == {"pending": 0, "retrying": 0, "succeeded": 1, "exhausted": 0}
            assert view["entries"][0]["id"] == result["ids"][0]
