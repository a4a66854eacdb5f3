"""Helpers the analytics report tests share: a fresh gateway per module (reports are fleet-wide), calls made
through /mcp, history of chosen times written as the rollup feed writes it, and report reads."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from paygate.core.keys import hash_key
from paygate.store.rollups import CallFact
from tests.inprocess import InProcessGateway


def get(gw: InProcessGateway, path: str, **params: Any) -> httpx.Response:
    return gw.client.get(path, params=params, headers=gw.admin())


def report(gw: InProcessGateway, path: str, **params: Any) -> dict[str, Any]:
    resp = get(gw, path, **params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def new_key(gw: InProcessGateway, credits: int, **fields: Any) -> str:
    """A key with a unique name (unless given)."""
    body = {"name": f"k-{uuid.uuid4().hex[:8]}", "credits": credits, **fields}
    resp = gw.client.post("/keys", json=body, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    return str(resp.json()["key"])


def calls(gw: InProcessGateway, key: str, times: int = 1, tool: str = "echo") -> list[dict[str, Any]]:
    """`times` real tool calls through /mcp; their answers."""
    return [gw.call_tool(tool, {"text": "x"}, key) for _ in range(times)]


def key_hash(key: str) -> str:
    return hash_key(key)


def record(gw: InProcessGateway, facts: Sequence[CallFact]) -> None:
    """History at chosen times, written as the rollup feed writes a batch (for trends, forecasts, anomalies:
    a test cannot wait hours). Calls made through /mcp are fed for real."""
    assert gw.rt is not None
    gw.call_in_loop(gw.rt.store.rollups.record, list(facts))


def assert_refused_unchanged(gw: InProcessGateway, path: str, bad: Sequence[dict[str, Any]]) -> None:
    """Each set of `bad` parameters is a 400, and the report answers the same afterwards."""
    before = report(gw, path)
    for params in bad:
        resp = get(gw, path, **params)
        assert resp.status_code == 400, (path, params, resp.text)
    after = report(gw, path)
    before.pop("generatedAt", None)
    after.pop("generatedAt", None)
    assert before == after


def csv_rows(gw: InProcessGateway, path: str, **params: Any) -> list[dict[str, str]]:
    """A report's CSV export, as rows."""
    resp = get(gw, path, format="csv", **params)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv"), resp.text
    return list(csv.DictReader(io.StringIO(resp.text)))
