"""Reports on a fleet: two gateways on one real redis-server count every call of the fleet, whichever
instance answered it and whichever instance is asked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.redis_fleet import paid_calls, start_fleet, stop_all, total
from tests.redis_server import RedisServer, running_redis
from tests.support import Gateway, wait_until

DEADLINE = 10.0


@pytest.fixture(scope="module")
def fleet() -> Iterator[list[Gateway]]:
    with running_redis() as server:
        gateways = _fleet(server)
        try:
            yield gateways
        finally:
            stop_all(gateways)


def _fleet(server: RedisServer) -> list[Gateway]:
    return start_fleet(2, server.url, "--rate-limit", "0")


def overview(gw: Gateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/system-overview", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_every_instance_reports_the_fleets_calls(fleet: list[Gateway]) -> None:
    a, b = fleet
    key = a.create_key(30)
    wait_until(
        lambda: b.client.get("/balance", headers={"X-API-Key": key}).status_code == 200, DEADLINE, "the key on B"
    )
    answers = total(paid_calls(fleet, key, 20))  # 40 calls for 30 credits: 30 admitted, 10 refused
    assert answers.ok == 30 and answers.refused == {"insufficient_credits": 10}, answers
    for gw in fleet:
        wait_until(lambda gw=gw: overview(gw)["activity"]["totalCalls"] == 40, DEADLINE, f"40 calls on {gw.port}")
        assert overview(gw)["credits"]["totalSpent"] == 30
