"""Helpers the per-key policy tests share (test_policy*.py): posting, reading a key, its geo lists, its
events and a denial's reason."""

from __future__ import annotations

from typing import Any

from tests.inprocess import InProcessGateway
from tests.support import masked


def post(gw: InProcessGateway, path: str, body: dict[str, Any]) -> Any:
    return gw.client.post(path, json=body, headers=gw.admin())


def view(gw: InProcessGateway, raw: str) -> dict[str, Any]:
    """The key as GET /keys shows it."""
    mine = [k for k in gw.client.get("/keys", headers=gw.admin()).json() if k["keyMasked"] == masked(raw)]
    assert len(mine) == 1
    return dict(mine[0])


def geo(gw: InProcessGateway, ref: str) -> dict[str, Any]:
    resp = gw.client.get("/keys/geo", params={"key": ref}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def events_for(gw: InProcessGateway, type_: str, raw: str) -> list[dict[str, Any]]:
    return [e for e in gw.events(type_) if e["data"].get("keyMasked") == masked(raw)]


def denial(reply: dict[str, Any]) -> str | None:
    return reply["error"]["data"]["reason"] if "error" in reply else None


def set_alias(gw: InProcessGateway, raw: str, alias: str) -> None:
    resp = post(gw, "/keys/alias", {"key": raw, "alias": alias})
    assert resp.status_code == 200, resp.text
