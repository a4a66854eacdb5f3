"""Shadow mode through the real app: every call goes through uncharged, and /usage says what the
gate would have done (the reference's `shadow:key_suspended`)."""

from __future__ import annotations

from tests.inprocess import running_inprocess_gateway
from tests.support import ECHO_COMMAND


def test_a_suspended_key_goes_through_in_shadow_mode_and_usage_says_why_it_would_not_have() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--shadow") as gw:
        raw = gw.create_key(5, name="shadowed")
        assert gw.client.post("/keys/suspend", headers=gw.admin(), json={"key": raw}).status_code == 200
        reply = gw.call_tool("add", {"a": 2, "b": 3}, raw)
        assert reply["result"]["structuredContent"] == {"result": 5}
        assert reply["result"]["_meta"]["paygate"]["shadow"] == "shadow:key_suspended"
        gw.client.post("/keys/resume", headers=gw.admin(), json={"key": raw})
        assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, raw)
        events = gw.client.get("/usage", headers=gw.admin()).json()["events"]
        mine = [(e["allowed"], e["creditsCharged"], e["denyReason"]) for e in events if e["keyName"] == "shadowed"]
        assert mine == [(True, 0, "shadow:key_suspended"), (True, 0, "shadow")]
        assert gw.balance(raw) == 5  # shadow mode never moves money


def test_a_refunded_call_is_rolled_back_from_total_calls_and_total_spent() -> None:
    """The reference: "credits are refunded and totalSpent / totalCalls are rolled back"."""
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--refund-on-failure") as gw:
        raw = gw.create_key(10)
        assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, raw)
        failed = gw.call_tool("fail", {}, raw)
        assert failed.get("result", {}).get("isError") or "error" in failed
        body = gw.client.get("/balance", headers={"X-API-Key": raw}).json()
        assert (body["credits"], body["totalSpent"], body["totalCalls"]) == (9, 1, 1)
        daily = body["quotaUsage"]["daily"]
        assert (daily["calls"]["used"], daily["credits"]["used"]) == (1, 1)  # the quota gave the call back
