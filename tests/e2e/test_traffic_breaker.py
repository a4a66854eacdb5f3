"""The circuit breaker, retries and timeouts through the real CLI (`paygate-mcp wrap`) against a real
server that fails and hangs on demand (tests/servers/flaky_server.py): the breaker opening, refusing
without charge, half-opening and closing; a retried call charged once; a hanging call timed out,
cancelled at the server and settled by the refund policy."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import PYTHON, ROOT, Gateway, running_gateway, text_of, wait_until, write_config

FLAKY_SERVER = str(ROOT / "tests" / "servers" / "flaky_server.py")
FREE = {"creditsPerCall": 0}


def flaky_config(tmp_path: Path, **extra: Any) -> str:
    pricing = {"stats": FREE, "fail_next": FREE, **extra.pop("toolPricing", {})}
    return write_config(
        tmp_path,
        {"serverCommand": PYTHON, "serverArgs": [FLAKY_SERVER], "globalRateLimitPerMin": 0, "toolPricing": pricing}
        | extra,
    )


def server_stats(gw: Gateway, key: str) -> dict[str, Any]:
    return dict(json.loads(text_of(gw.call_tool("stats", {}, key))))


def admin_get(gw: Gateway, path: str) -> dict[str, Any]:
    resp = gw.client.get(path, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_the_breaker_opens_refuses_without_charge_half_opens_and_closes(tmp_path: Path) -> None:
    config = flaky_config(tmp_path, circuitBreakerThreshold=2, circuitBreakerCooldownSeconds=1)
    with running_gateway("--config", config) as gw:
        key = gw.create_key(10)
        assert "result" in gw.call_tool("fail_next", {"count": 2, "code": -32000}, key)
        for i in range(2):
            assert gw.call_tool("work", {}, key, msg_id=i)["error"]["code"] == -32000
        assert gw.balance(key) == 8  # failures that reached the server are charged (refundOnFailure off)
        refused = gw.call_tool("work", {}, key)
        assert refused["error"]["code"] == -32003, refused
        assert refused["error"]["data"]["reason"] == "circuit_breaker_open"
        assert 0 < refused["error"]["data"]["retryAfterSeconds"] <= 1
        assert gw.balance(key) == 8  # refused before the gate: not charged
        circuit = admin_get(gw, "/admin/circuit")
        assert (circuit["state"], circuit["breakers"]["backend"]["rejections"]) == ("open", 1)
        assert 'paygate_circuit_state{breaker="backend"} 1.0' in gw.client.get("/metrics").text

        wait_until(lambda: admin_get(gw, "/admin/circuit")["state"] == "half_open", 5, "the cooldown to pass")
        probe = gw.call_tool("work", {}, key)
        assert text_of(probe) == "worked 3"  # the server saw the two failures and the probe, never the refusal
        assert admin_get(gw, "/admin/circuit")["state"] == "closed" and gw.balance(key) == 7
        assert server_stats(gw, key)["work"] == 3
        wait_until(lambda: gw.events("circuit.closed"), 10, "circuit.closed on stderr")
        assert [e["data"]["breaker"] for e in gw.events("circuit.opened")] == ["backend"]


def test_a_retried_call_is_charged_once(tmp_path: Path) -> None:
    policy = {
        "enabled": True,
        "maxRetries": 3,
        "baseBackoffMs": 10,
        "maxBackoffMs": 50,
        "retryOn": {"errorCodes": [-32000]},
        "idempotentTools": ["work"],
    }
    with running_gateway("--config", flaky_config(tmp_path, retryPolicy=policy)) as gw:
        key = gw.create_key(10)
        gw.call_tool("fail_next", {"count": 2}, key)
        assert text_of(gw.call_tool("work", {}, key)) == "worked 3"  # two failures, retried, then a success
        assert gw.balance(key) == 9
        stats = admin_get(gw, "/admin/retry-policy")["tools"]["work"]
        assert (stats["calls"], stats["attempts"], stats["retries"], stats["succeededAfterRetry"]) == (1, 3, 2, 1)


@pytest.mark.parametrize("refund", [True, False])
def test_a_hanging_call_times_out_is_cancelled_at_the_server_and_settled_by_the_refund_policy(
    tmp_path: Path, refund: bool
) -> None:
    # with refunds: the tool's timeout from the config file; without: set at runtime by an admin
    extra: dict[str, Any] = {"toolPricing": {"hang": {"timeoutMs": 500}}} if refund else {}
    with running_gateway("--config", flaky_config(tmp_path, refundOnFailure=refund, **extra)) as gw:
        if not refund:
            resp = gw.client.post("/admin/timeouts", json={"tools": {"hang": 500}}, headers=gw.admin())
            assert resp.status_code == 200 and resp.json()["tools"] == {"hang": 500}, resp.text
        key = gw.create_key(10)
        started = time.monotonic()
        reply = gw.call_tool("hang", {}, key)
        assert reply["error"]["code"] == -32004 and time.monotonic() - started < 5, reply
        wait_until(lambda: server_stats(gw, key)["cancelled"], 10, "the server to see notifications/cancelled")
        assert server_stats(gw, key)["hang"] == 1
        assert gw.balance(key) == (10 if refund else 9)
