"""What the tools/call_batch tests share (tests/api/test_call_batch.py in-process, tests/e2e/test_call_batch.py
through the real CLI): the prices, a config file for the echo server, and readers of answers and logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import ECHO_COMMAND, Gateway

PRICES = {
    "add": {"creditsPerCall": 5},
    "echo": {"creditsPerCall": 3},
    "slow": {"creditsPerCall": 2},
    "slow_calls": {"creditsPerCall": 0},
    "meet": {"creditsPerCall": 1},
}
MARK = 0.0042  # the `slow` call of a refused batch: the server never sees it


def batch_config(tmp_path: Path, **config: Any) -> str:
    """A config file: the echo server, PRICES, no global rate limit (and `config` on top)."""
    path = tmp_path / "paygate.json"
    command, *args = ECHO_COMMAND.split()
    path.write_text(
        json.dumps(
            {"serverCommand": command, "serverArgs": args, "toolPricing": PRICES, "globalRateLimitPerMin": 0, **config}
        )
    )
    return str(path)


def batch(gw: Gateway, calls: list[dict[str, Any]], key: str | None, msg_id: Any = 7) -> dict[str, Any]:
    return dict(gw.rpc("tools/call_batch", {"calls": calls}, key=key, msg_id=msg_id).json())


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def text(result: dict[str, Any]) -> str:
    return str(result["content"][0]["text"])


def slow_calls_began(gw: Gateway, key: str) -> str:
    return text(gw.call_tool("slow_calls", {}, key)["result"])


def usage(gw: Gateway) -> list[dict[str, Any]]:
    resp = gw.client.get("/usage", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return list(resp.json()["events"])


def gate_log(gw: Gateway, status: str) -> list[dict[str, Any]]:
    """The request log's entries (one per gate.allow / gate.deny event), oldest first."""
    resp = gw.client.get("/requests/export", params={"status": status}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return list(resp.json()["requests"])
