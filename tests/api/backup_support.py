"""Helpers the backup and restore tests share (test_backup*.py): taking and restoring a snapshot, the
documented checksum, and the plans, tags and key entries they look at."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from tests.inprocess import InProcessGateway


def backup(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get("/admin/backup", headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def restore(gw: InProcessGateway, snapshot: dict[str, Any], mode: str, headers: dict[str, str] | None = None) -> Any:
    return gw.client.post("/admin/restore", headers=headers or gw.admin(), json={"backup": snapshot, "mode": mode})


def digest(data: Any) -> str:
    """The documented checksum: SHA-256 of JSON with sorted keys, no whitespace, UTF-8."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def key_entry(snapshot: dict[str, Any], raw: str) -> dict[str, Any]:
    return next(k for k in snapshot["data"]["keys"] if k["keyHash"] == sha(raw))


def make_plan(gw: InProcessGateway, **fields: Any) -> str:
    name = f"plan-{uuid.uuid4().hex[:8]}"
    resp = gw.client.post("/admin/plans", headers=gw.admin(), json={"name": name, **fields})
    assert resp.status_code == 201, resp.text
    return name


def plan_doc(gw: InProcessGateway, name: str) -> dict[str, Any] | None:
    listing = gw.client.get("/admin/plans", headers=gw.admin()).json()["plans"]
    return next((p for p in listing if p["name"] == name), None)


def tags(gw: InProcessGateway, raw: str, values: dict[str, str | None]) -> None:
    resp = gw.client.post("/keys/tags", headers=gw.admin(), json={"key": raw, "tags": values})
    assert resp.status_code == 200, resp.text


def comparable(snapshot: dict[str, Any]) -> Any:
    return snapshot["data"]
