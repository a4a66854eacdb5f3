"""The per-key reports' endpoints, the gateway's limits and prices (conftest.py starts it with them) and the
helpers the report tests share."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.inprocess import InProcessGateway

REPORTS = (
    "/keys/usage",
    "/keys/rate-limit-status",
    "/keys/quota-status",
    "/keys/credit-history",
    "/keys/spending-velocity",
    "/keys/health",
    "/keys/dashboard",
    "/keys/activity",
    "/tools/available",
)
GLOBAL_LIMIT = 10
ADD_LIMIT = 3
ADD_PRICE = 2
CONFIG = {"toolPricing": {"add": {"creditsPerCall": ADD_PRICE, "rateLimitPerMin": ADD_LIMIT}}}


def get(gw: InProcessGateway, path: str, **params: Any) -> httpx.Response:
    return gw.client.get(path, params=params, headers=gw.admin())


def report(gw: InProcessGateway, path: str, key: str, **params: Any) -> dict[str, Any]:
    resp = get(gw, path, key=key, **params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def post(gw: InProcessGateway, path: str, body: dict[str, Any]) -> httpx.Response:
    resp = gw.client.post(path, json=body, headers=gw.admin())
    assert resp.status_code in (200, 201), resp.text
    return resp


def with_alias(gw: InProcessGateway, raw: str) -> str:
    alias = f"rep-{uuid.uuid4().hex[:10]}"
    post(gw, "/keys/alias", {"key": raw, "alias": alias})
    return alias


def echo(gw: InProcessGateway, key: str, times: int = 1) -> None:
    for _ in range(times):
        assert "result" in gw.call_tool("echo", {"text": "x"}, key)
