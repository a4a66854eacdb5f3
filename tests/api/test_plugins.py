"""Plugins in a real gateway (served in-process): prices they set are what the ledger charges, their
refusals come before any charge, a broken plugin changes nothing, GET /plugins and their endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, wait_until, write_config

S = "tests.plugin_samples"
CONFIG = {"toolPricing": {"add": {"creditsPerCall": 2}}, "plugins": [f"{S}:Broken", {"module": f"{S}:Recorder"}]}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    """Broken first (every hook of it fails), then Recorder, Pricing, Gatekeeper (config, then flags)."""
    config = write_config(tmp_path_factory.mktemp("plugins"), CONFIG)
    flags = ("--plugin", f"{S}:Pricing", "--plugin", f"{S}:Gatekeeper")
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config, *flags) as g:
        yield g


def seen(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/plugins/recorder/seen", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_a_plugin_price_is_what_the_ledger_charges(gw: InProcessGateway) -> None:
    key = gw.create_key(20)
    assert gw.call_tool("add", {"a": 1, "b": 2}, key).get("result") is not None
    assert gw.balance(key) == 20 - (2 + 3)  # the price book's 2, plus the plugin's 3
    assert gw.call_tool("announce", {"text": "hi"}, key).get("result") is not None
    assert gw.balance(key) == 15  # set to -5 by the plugin: clamped to 0, never a credit given


def test_a_price_the_key_cannot_pay_is_refused_before_any_charge(gw: InProcessGateway) -> None:
    key = gw.create_key(4)
    reply = gw.call_tool("add", {"a": 1, "b": 2}, key)
    assert reply["error"]["data"]["reason"] == "insufficient_credits"
    assert reply["error"]["data"]["creditsRequired"] == 5
    assert gw.balance(key) == 4


def test_before_gate_refuses_with_its_reason_before_any_charge(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    reply = gw.call_tool("echo", {"text": "forbidden"}, key, msg_id=7)
    assert reply["id"] == 7 and reply["error"]["code"] == -32402
    assert reply["error"]["data"]["reason"] == "plugin_denied"
    assert "forbidden text" in reply["error"]["message"]
    assert gw.balance(key) == 10
    # published as gate.deny like the gate's own refusals: the plugins' on_deny hears of it
    wait_until(lambda: any(d["reason"] == "plugin_denied" for d in seen(gw)["denies"]), 10, "on_deny")
    deny = [d for d in seen(gw)["denies"] if d["reason"] == "plugin_denied"]
    assert deny[-1]["tool"] == "echo" and deny[-1]["credits"] == 0


def test_a_batch_meets_the_gate_hooks_for_each_call(gw: InProcessGateway) -> None:
    key = gw.create_key(20)
    calls = [{"name": "add", "arguments": {"a": 1, "b": 2}}, {"name": "echo", "arguments": {"text": "forbidden"}}]
    refused = gw.rpc("tools/call_batch", {"calls": calls}, key=key).json()["error"]
    assert refused["data"]["reason"] == "plugin_denied" and refused["data"]["failedIndex"] == 1
    assert gw.balance(key) == 20  # all or nothing: nothing charged
    calls[1]["arguments"]["text"] = "fine"
    assert "result" in gw.rpc("tools/call_batch", {"calls": calls}, key=key).json()
    assert gw.balance(key) == 20 - (2 + 3) - 1  # the plugin's price for add, the price book's for echo


def test_before_tool_call_refuses_or_rewrites_and_after_tool_call_sees_the_cost(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    held = gw.call_tool("echo", {"text": "hold"}, key)
    assert held["error"]["data"]["reason"] == "plugin_denied" and gw.balance(key) == 10
    reply = gw.call_tool("echo", {"text": "shout:hi"}, key)
    assert reply["result"]["content"][0]["text"] == "SHOUT:HI"  # the rewritten arguments reached the server
    assert reply["result"]["pluginNote"] == "cost 1"
    plain = gw.call_tool("echo", {"text": "plain"}, key)
    assert plain["result"]["content"][0]["text"] == "plain"  # the plugin's change to its own copy: nothing
    assert gw.balance(key) == 8


def test_a_broken_plugin_changes_nothing_and_its_failures_are_counted(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    assert gw.call_tool("echo", {"text": "x"}, key)["result"]["content"][0]["text"] == "x"
    assert gw.balance(key) == 9
    listed = {p["name"]: p for p in gw.client.get("/plugins", headers=gw.admin()).json()["plugins"]}
    assert listed["broken"]["errors"] >= 4  # before_gate, transform_price, before_tool_call, after_tool_call
    metrics = gw.client.get("/metrics").text
    assert 'paygate_plugin_errors_total{hook="before_gate",plugin="broken"}' in metrics
    assert "paygate_plugins_total 4.0" in metrics


def test_after_gate_sees_allowed_calls_with_their_credits(gw: InProcessGateway) -> None:
    key = gw.create_key(10)
    reply = gw.rpc("tools/call", {"name": "add", "arguments": {"a": 2, "b": 2}}, key=key)
    request_id = reply.headers["x-request-id"]
    wait_until(lambda: any(d["request_id"] == request_id for d in seen(gw)["decisions"]), 10, "after_gate")
    decision = next(d for d in seen(gw)["decisions"] if d["request_id"] == request_id)
    assert (decision["tool"], decision["allowed"], decision["credits"]) == ("add", True, 5)
    assert seen(gw)["started"] == 1


def test_get_plugins_lists_them_in_order_for_an_admin_only(gw: InProcessGateway) -> None:
    assert gw.client.get("/plugins").status_code == 401
    body = gw.client.get("/plugins", headers=gw.admin()).json()
    assert body["count"] == 4
    assert [p["name"] for p in body["plugins"]] == ["broken", "recorder", "pricing", "gatekeeper"]
    recorder = body["plugins"][1]
    assert recorder["version"] == "2.1.0" and recorder["publicPaths"] == ["ping"]
    assert recorder["hooks"] == ["afterGate", "onDeny", "onRequest", "onStart"]


def test_plugin_endpoints_need_the_admin_key_unless_public(gw: InProcessGateway) -> None:
    assert gw.client.get("/plugins/recorder/seen").status_code == 401
    assert gw.client.get("/plugins/recorder/seen", headers={"X-Admin-Key": "wrong"}).status_code == 401
    assert gw.client.get("/plugins/recorder/ping").json() == {"pong": True, "admin": False}
    assert gw.client.get("/plugins/recorder/ping", headers=gw.admin()).json() == {"pong": True, "admin": True}
    posted = gw.client.post("/plugins/recorder/echo", json={"x": 1}, headers=gw.admin())
    assert posted.status_code == 201 and posted.json() == {"got": {"x": 1}, "sawAdminKey": False}
    assert gw.client.get("/plugins/recorder/nothing", headers=gw.admin()).status_code == 404
    assert gw.client.get("/plugins/pricing/x", headers=gw.admin()).status_code == 404  # no on_request
    assert gw.client.get("/plugins/nobody/x", headers=gw.admin()).status_code == 404
    assert gw.client.get("/plugins/nobody/x").status_code == 401  # which plugins exist: admins only
    assert gw.client.get("/plugins/pricing/ping").status_code == 401
    broke = gw.client.get("/plugins/recorder/boom", headers=gw.admin())
    assert broke.status_code == 500 and "the plugin broke" not in broke.text


def test_a_plugin_that_cannot_load_stops_the_start() -> None:
    with (
        pytest.raises(Exception, match="another plugin is already named 'recorder'"),
        running_inprocess_gateway(
            "--server", ECHO_COMMAND, "--plugin", f"{S}:Recorder", "--plugin", f"{S}:SameNameAsRecorder"
        ),
    ):
        pass
