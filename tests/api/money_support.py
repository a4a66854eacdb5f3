"""What the money-rule tests share (spend caps, budget policies, quota rules): a gateway that keeps gate
events in the audit log, and forty calls by one key at once over separate connections."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config

ECHO_CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}


@contextmanager
def audited_gateway(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[InProcessGateway]:
    config = write_config(tmp_path_factory.mktemp(name), {"auditGateEvents": True})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gateway:
        yield gateway


def racing_echo_calls(gw: InProcessGateway, key: str, calls: int = 40) -> list[dict[str, Any]]:
    """`calls` echo calls by `key` at once, 16 in flight, each on its own connection: their answers."""

    def one(_: int) -> dict[str, Any]:
        with httpx.Client(base_url=gw.url, timeout=30) as client:
            return dict(client.post("/mcp", json=ECHO_CALL, headers={"X-API-Key": key}).json())

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(calls)))


def admitted_and_reasons(replies: list[dict[str, Any]]) -> tuple[int, set[str]]:
    """How many calls ran, and the reasons the others were refused with."""
    return sum("result" in r for r in replies), {r["error"]["data"]["reason"] for r in replies if "error" in r}
