"""/metrics after calls of every outcome: the counters' names, labels and exact values."""

from __future__ import annotations

import re
from pathlib import Path

from tests.inprocess import running_inprocess_gateway
from tests.support import ECHO_SERVER, PYTHON, write_config

CONFIG = {
    "serverCommand": PYTHON,
    "serverArgs": [ECHO_SERVER],
    "globalRateLimitPerMin": 0,
    "refundOnFailure": True,
    "toolPricing": {
        "add": {"creditsPerCall": 2},
        "big_output": {"creditsPerCall": 1, "creditsPerKbOutput": 1},
        "echo": {"rateLimitPerMin": 1},
    },
}


def samples(text: str, family: str) -> dict[str, float]:
    """`{'{labels}': value}` of one family's samples."""
    return {m[1]: float(m[2]) for m in re.finditer(rf"^{family}(\{{[^}}]*\}}) (\S+)$", text, re.M)}


def test_allowed_denied_refunded_surcharged_and_rate_limited_calls_are_counted(tmp_path: Path) -> None:
    with running_inprocess_gateway("--config", write_config(tmp_path, CONFIG)) as gw:
        key = gw.create_key(100)
        gw.call_tool("add", {"a": 1, "b": 1}, key)  # allowed: 2 credits
        before = gw.balance(key)
        gw.call_tool("big_output", {"kilobytes": 3}, key)  # allowed: 1 credit, then the output surcharge
        big_output_charged = before - gw.balance(key)
        gw.call_tool("fail", {}, key)  # allowed (1 credit), then refunded
        gw.call_tool("echo", {"text": "a"}, key)
        gw.call_tool("echo", {"text": "b"}, key)  # over echo's 1 a minute
        gw.call_tool("add", {"a": 1, "b": 1}, gw.create_key(1))  # insufficient credits
        gw.call_tool("add", {"a": 1, "b": 1}, None)  # no key
        text = gw.client.get("/metrics").text

    assert big_output_charged > 1  # the surcharge was taken
    assert samples(text, "paygate_tool_calls_total") == {
        '{status="allowed",tool="add"}': 1,
        '{status="allowed",tool="big_output"}': 1,
        '{status="allowed",tool="fail"}': 1,
        '{status="allowed",tool="echo"}': 1,
        '{status="denied",tool="echo"}': 1,
        '{status="denied",tool="add"}': 2,
    }
    assert samples(text, "paygate_credits_charged_total") == {
        '{tool="add"}': 2,
        '{tool="big_output"}': big_output_charged,
        '{tool="fail"}': 1,
        '{tool="echo"}': 1,
    }
    assert samples(text, "paygate_refunds_total") == {'{tool="fail"}': 1}
    assert samples(text, "paygate_rate_limit_hits_total") == {'{tool="echo"}': 1}
    assert samples(text, "paygate_denials_total") == {
        '{reason="tool_rate_limited"}': 1,
        '{reason="insufficient_credits"}': 1,
        '{reason="missing_api_key"}': 1,
    }
    assert samples(text, "paygate_http_requests_total")['{method="POST",path="/mcp",status="200"}'] == 7
    assert samples(text, "paygate_webhook_deliveries_total") == {'{result="success"}': 0, '{result="failure"}': 0}
    for family in ("tool_calls", "credits_charged", "denials", "rate_limit_hits", "refunds", "http_requests"):
        assert f"# TYPE paygate_{family}_total counter" in text
